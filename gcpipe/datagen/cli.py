"""``gcpipe datagen``: seeded, realistic data sets, each printed as a JSON summary of what was written."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import click

seed_option = click.option("--seed", default=42, show_default=True, help="Same seed, same bytes.")


def _report(manifest) -> None:
    click.echo(json.dumps(asdict(manifest), indent=2, default=str))


@click.group()
def datagen() -> None:
    """Generate realistic, seeded data sets."""


@datagen.command("taxi-trips")
@click.option("--rows", default=100_000, show_default=True)
@click.option("--output", required=True, help="CSV file to write (.gz for gzip).")
@click.option(
    "--malformed", default=0.0, show_default=True, help="Fraction of lines to spoil (see the kinds)."
)
@click.option("--date", "day", default="2019-03-01", show_default=True, help="First pickup date.")
@click.option("--days", default=1, show_default=True)
@seed_option
def taxi_trips(rows: int, output: str, malformed: float, day: str, days: int, seed: int) -> None:
    """NYC TLC yellow-taxi trips as CSV, with an optional mix of malformed rows."""
    from gcpipe.datagen.taxi_trips import write_trips_csv

    _report(write_trips_csv(output, rows, seed, malformed, date.fromisoformat(day), days))


@datagen.command("ride-events")
@click.option("--events", default=10_000, show_default=True)
@click.option("--rate", default=100.0, show_default=True, help="Events per second of event time.")
@click.option("--start", default=None, help="ISO time of the first event (default: now).")
@click.option("--output", required=True, help="JSON-lines file to write.")
@seed_option
def ride_events(events: int, rate: float, start: str | None, output: str, seed: int) -> None:
    """Taxi ride events in the public taxirides-realtime JSON format."""
    from gcpipe.datagen.ride_events import write_ride_events

    moment = datetime.fromisoformat(start) if start else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    write_ride_events(output, events, moment, rate, seed)
    click.echo(json.dumps({"path": output, "events": events, "start": moment.isoformat(), "rate": rate}))


@datagen.command()
@click.option("--rows", default=494_021, show_default=True, help="Default: the size of the real 10% file.")
@click.option("--output", required=True, help="File to write (.gz for gzip).")
@click.option("--malformed", default=0.0, show_default=True)
@seed_option
def kdd(rows: int, output: str, malformed: float, seed: int) -> None:
    """KDD Cup 99 connection records with the real label distribution."""
    from gcpipe.datagen.kdd import write_kdd

    _report(write_kdd(output, rows, seed, malformed))


@datagen.command()
@click.option("--visitors", default=20_000, show_default=True)
@click.option("--output", required=True, help="JSON-lines file to write (.gz for gzip).")
@click.option("--start", default="2016-08-01", show_default=True)
@click.option("--days", default=365, show_default=True)
@seed_option
def ecommerce(visitors: int, output: str, start: str, days: int, seed: int) -> None:
    """E-commerce sessions like the Google Analytics sample, with repeated hits."""
    from gcpipe.datagen.ecommerce import write_sessions

    _report(write_sessions(output, visitors, seed, date.fromisoformat(start), days))


@datagen.command()
@click.option("--output", required=True, help="Folder for accommodations.csv and ratings.csv.")
@click.option("--accommodations", default=99, show_default=True)
@click.option("--users", default=25, show_default=True)
@seed_option
def rentals(output: str, accommodations: int, users: int, seed: int) -> None:
    """Accommodations and user ratings for the ALS recommendation lab."""
    from gcpipe.datagen.rentals import write_rentals

    _report(write_rentals(output, accommodations, users, seed=seed))


@click.group()
def rides() -> None:
    """Simulated taxi rides for the streaming pipeline."""


@rides.command()
@click.option("--topic", default="taxirides-realtime", show_default=True, help="Topic (created if missing).")
@click.option("--rate", default=100.0, show_default=True, help="Messages per second.")
@click.option("--duration", default=60.0, show_default=True, help="Seconds to publish for.")
@click.option("--count", type=int, default=None, help="Messages to publish (instead of --duration).")
@click.option("--duplicates", default=0.0, show_default=True, help="Fraction sent again (same event_id).")
@click.option("--late", default=0.0, show_default=True, help="Fraction stamped --late-minutes behind.")
@click.option("--late-minutes", default=3.0, show_default=True)
@click.option("--malformed", default=0.0, show_default=True, help="Fraction spoiled (five kinds).")
@click.option("--seed", type=int, default=None, help="Same seed, same messages (default: fresh rides).")
@click.option("--summary", "summary_path", default=None, help="Write the summary JSON here too.")
@click.option("--manifest", default=None, help="Write every message (JSON lines): the ground truth.")
def publish(
    topic, rate, duration, count, duplicates, late, late_minutes, malformed, seed, summary_path, manifest
):
    """Publish ride events to Pub/Sub in real time; print what was sent."""
    total = count if count is not None else int(rate * duration)
    from gcpipe.datagen.ride_publisher import publish_rides

    summary = publish_rides(
        topic,
        rate,
        total,
        duplicates=duplicates,
        late=late,
        malformed=malformed,
        late_minutes=late_minutes,
        seed=seed,
        manifest=manifest,
    )
    text = json.dumps(asdict(summary), indent=2)
    if summary_path:
        Path(summary_path).write_text(text + "\n")
    click.echo(text)
