"""The streaming pipeline's options, declared once: Beam reads them, ``--help`` lists them, and the flex
template's ``infra/dataflow/taxi_streaming/metadata.json`` declares them with the same help text."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from gcpipe.core.errors import GcpipeError
from pipelines.rides.windows import AREA_WINDOW

IO = ("batched", "beam")
WRITE_METHODS = ("load_jobs", "streaming_inserts")


class PipelineArgumentError(GcpipeError):
    pass


class RideOptions(PipelineOptions):
    """What to read, where it goes, how windows fire"""

    @classmethod
    def _add_argparse_args(cls, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--input_topic",
            help="A Pub/Sub topic to read, a name or projects/P/topics/T, through a subscription made for it "
            "(<topic>-taxi-streaming here, a temporary one on Dataflow). Give this or input_subscription.",
        )
        source.add_argument(
            "--input_subscription",
            help="The Pub/Sub subscription to read, a name or projects/P/subscriptions/S. Give this or "
            "input_topic.",
        )
        parser.add_argument(
            "--output_dataset",
            help="The BigQuery dataset of the output tables (ride_events, ride_dead_letter, rides_per_minute, "
            "rides_by_area, made if missing): dataset, project:dataset or project.dataset.",
        )
        parser.add_argument(
            "--allowed_lateness",
            type=float,
            default=300,
            help="Seconds an event may trail the watermark and still update its window (a later event is "
            "stored, not counted).",
        )
        parser.add_argument(
            "--firing_seconds",
            type=int,
            default=3,
            help="Early and late panes of the per-minute windows every N seconds.",
        )
        parser.add_argument(
            "--area_firing_seconds",
            type=int,
            default=10,
            help="Early and late panes of the heat map's windows every N seconds.",
        )
        parser.add_argument(
            "--duration_seconds",
            type=float,
            default=None,
            help="Run this long, then drain: stop reading, fire every window's final pane, store what was "
            "read, end (without it: until Ctrl-C or SIGTERM, which drain the same way).",
        )
        parser.add_argument(
            "--io",
            choices=IO,
            default=None,
            help="Pub/Sub and BigQuery I/O: batched (pulls large batches, acknowledges each message once it "
            "is stored; the default here) or beam (ReadFromPubSub and WriteToBigQuery; the default on "
            "Dataflow).",
        )
        parser.add_argument(
            "--events_write_method",
            choices=WRITE_METHODS,
            default="load_jobs",
            help="How --io batched writes ride_events: load_jobs (micro-batch loads, fast on the emulator) "
            "or streaming_inserts (insertAll: BigQuery allows 1,500 load jobs a table a day).",
        )
        parser.add_argument(
            "--dedup_seconds", type=float, default=600, help="How long event ids are remembered."
        )
        parser.add_argument(
            "--watermark_delay",
            type=float,
            default=2.0,
            help="Seconds an event's time may trail its publish time and still be on time (--io batched).",
        )
        parser.add_argument(
            "--batch_seconds",
            type=float,
            default=0.5,
            help="Longest wait for messages before a batch goes on (--io batched).",
        )
        parser.add_argument(
            "--batch_size", type=int, default=10_000, help="Most messages in a batch (--io batched)."
        )
        parser.add_argument(
            "--max_outstanding",
            type=int,
            default=20_000,
            help="Most messages pulled and not yet stored; pulling waits beyond (--io batched).",
        )
        parser.add_argument(
            "--replay_seconds",
            type=float,
            default=None,
            help="At start, rebuild the windows from stored events this recent, and the duplicate memory "
            "from the ids of the last dedup_seconds (at least and by default: the heat map's window + "
            "lateness; 0: off).",
        )


def check_ranges(ride: RideOptions) -> None:
    """One sentence for the first option out of its range."""
    at_least = {
        "--allowed_lateness": (ride.allowed_lateness, 0),
        "--firing_seconds": (ride.firing_seconds, 1),
        "--area_firing_seconds": (ride.area_firing_seconds, 1),
        "--dedup_seconds": (ride.dedup_seconds, 0),
        "--watermark_delay": (ride.watermark_delay, 0),
        "--batch_size": (ride.batch_size, 1),
        "--max_outstanding": (ride.max_outstanding, 1),
        "--batch_seconds": (ride.batch_seconds, 0.01),
    }
    for flag, (value, low) in at_least.items():
        if not value >= low:  # NaN too
            raise PipelineArgumentError(f"{flag} must be at least {low}, not {value}.")
    if ride.duration_seconds is not None and not ride.duration_seconds > 0:
        raise PipelineArgumentError(f"--duration_seconds must be positive, not {ride.duration_seconds}.")
    horizon = AREA_WINDOW + ride.allowed_lateness
    if ride.replay_seconds and not ride.replay_seconds >= horizon:
        raise PipelineArgumentError(
            f"--replay_seconds must be 0 (off) or at least {horizon:g} (the heat map's window plus "
            "--allowed_lateness): a shorter replay would rebuild windows that can still change from part "
            "of their events."
        )
