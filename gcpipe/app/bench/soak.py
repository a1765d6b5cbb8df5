"""``gcpipe bench soak`` (``make soak``): the streaming pipeline for a long run, a kill and an emulator restart.

The simulator publishes at ``--rate`` for ``--duration`` seconds, with duplicates, late and malformed
messages; the pipeline (its own process, on the local emulators, its default options) reads it. At
``--kill-at`` the pipeline is SIGKILLed and started again 3 s later; at ``--emulator-restart-at`` the
BigQuery emulator is stopped and started. Every second the soak asks ride_events how many rows it holds and
the newest publish time stored (``published_at``); every 30 s it samples the resident memory of the
pipeline and of each emulator. When publishing ends and everything is stored, the pipeline is drained
(SIGTERM) and its output is held against the simulator's manifest: events lost, stored twice, malformed
messages dead-lettered by reason, and the 1-minute windows whose latest pane differs from the manifest.

Publish-to-queryable lag: an event published at p is queryable at the first poll whose newest stored
publish time is >= p (the pipeline stores in publish order, batch by batch). Samples go to
``.gcpipe/bench/soak-<id>.jsonl``, the plot to ``benchmarks/soak.png``, the figures to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from google.api_core.exceptions import GoogleAPIError

from gcpipe.app.bench import BenchContext, Figure, _tree_rss_mb
from gcpipe.app.dashboard.queries import LATEST_PANE
from gcpipe.core import pubsub
from gcpipe.core.clients import bigquery_client
from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.errors import GcpipeError
from gcpipe.core.ui import console
from gcpipe.datagen.ride_publisher import MALFORMED_KINDS, publish_rides
from gcpipe.flows.streaming import start_pipeline, stop_pipeline, wait_until_reading
from gcpipe.local import stack

PLOT = PROJECT_ROOT / "benchmarks" / "soak.png"
EMULATORS = ("pubsub", "bigquery", "gcs")
SAMPLE_SECONDS = 30
FAULT_MARGIN = 60  # the minute after a fault is left out of the lag's p95
RESTART_PAUSE = 3  # seconds between the kill and the new pipeline


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gcpipe bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000, help="Messages a second (default 2000).")
    parser.add_argument("--duration", type=float, default=1800, help="Seconds of publishing (default 1800).")
    parser.add_argument("--duplicates", type=float, default=0.01, help="Share sent twice (default 0.01).")
    parser.add_argument("--late", type=float, default=0.01, help="Share 3 minutes late (default 0.01).")
    parser.add_argument("--malformed", type=float, default=0.005, help="Share malformed (default 0.005).")
    parser.add_argument("--kill-at", type=float, default=None, help="SIGKILL + restart the pipeline at T s.")
    parser.add_argument(
        "--emulator-restart-at", type=float, default=None, help="Stop and start the BigQuery emulator at T s."
    )
    args = parser.parse_args(argv)
    if not (args.rate > 0 and args.duration > 0):
        raise GcpipeError("--rate and --duration must be positive.")
    for flag, at in (("--kill-at", args.kill_at), ("--emulator-restart-at", args.emulator_restart_at)):
        if at is not None and not 0 < at < args.duration:
            raise GcpipeError(f"{flag} must fall inside the run (0 < T < --duration), not {at:g}.")
    return args


@dataclass
class Sample:
    t: float  # seconds since publishing began
    pipeline_mb: float
    pubsub_mb: float
    bigquery_mb: float
    gcs_mb: float
    stored: int | None
    freshness: float | None  # now - newest stored event time
    lag: float | None  # now - newest stored publish time


class Soak:
    def __init__(self, ctx: BenchContext, args: argparse.Namespace):
        self.ctx, self.args, self.config = ctx, args, ctx.config
        run = uuid.uuid4().hex[:6]
        self.topic, self.dataset = f"soak-{run}", f"{self.config.project}.soak_{run}"
        self.manifest = ctx.workdir / f"soak-{run}-manifest.jsonl"
        self.samples_path = ctx.workdir / f"soak-{run}.jsonl"
        self.bq = bigquery_client(self.config)
        self.polls: list[tuple[float, int, float]] = []  # (wall time, stored, newest publish time)
        self.samples: list[Sample] = []
        self.faults: list[tuple[str, float, float]] = []  # (what, from, to) in seconds since the start
        self.logs = 0

    # -- the run ---------------------------------------------------------------------------------------

    def start_pipeline(self):
        self.logs += 1
        log = self.ctx.workdir / f"{self.samples_path.stem}-pipeline-{self.logs}.log"
        return start_pipeline(self.topic, self.dataset, log=log)

    def run(self) -> dict:
        args = self.args
        process = self.start_pipeline()
        subscription = pubsub.path(self.config.project, "subscriptions", f"{self.topic}-taxi-streaming")
        wait_until_reading(process, subscription, self.config)
        publisher = threading.Thread(target=self.publish, daemon=True)
        self.began = time.time()
        publisher.start()
        console.print(f"soak: {args.rate:,.0f} msg/s for {args.duration:,.0f} s into {self.dataset}")
        next_sample, killed, restarted = 0.0, False, False
        while publisher.is_alive() or not self.all_stored():
            now = time.time() - self.began
            if now > args.duration + 600:
                raise GcpipeError(
                    f"the pipeline had not stored everything 600 s after publishing ended: {self.dataset}"
                )
            if args.kill_at is not None and not killed and now >= args.kill_at:
                killed = True
                process = self.kill_and_restart(process)
            if args.emulator_restart_at is not None and not restarted and now >= args.emulator_restart_at:
                restarted = True
                self.restart_bigquery()
            if process.poll() is not None:
                raise GcpipeError(f"the pipeline exited ({process.returncode}): see {self.ctx.workdir}")
            self.poll()
            if now >= next_sample:
                self.sample(process)
                next_sample += SAMPLE_SECONDS
            time.sleep(1)
        self.sample(process)
        process.send_signal(signal.SIGTERM)  # drain: every window's final pane
        try:
            process.wait(timeout=300)
        finally:
            stop_pipeline(process)
        return self.report()

    def publish(self) -> None:
        args = self.args
        self.summary = publish_rides(
            self.topic,
            args.rate,
            int(args.rate * args.duration),
            duplicates=args.duplicates,
            late=args.late,
            malformed=args.malformed,
            seed=7,
            manifest=self.manifest,
            config=self.config,
        )

    def kill_and_restart(self, process):
        killed = time.time() - self.began
        stop_pipeline(process)
        console.print(
            f"soak: SIGKILLed the pipeline at {killed:.0f} s; starting it again in {RESTART_PAUSE} s"
        )
        time.sleep(RESTART_PAUSE)
        self.restarted_at = time.time()
        self.faults.append(("kill", killed, self.restarted_at - self.began))
        return self.start_pipeline()

    def restart_bigquery(self) -> None:
        service = stack.SERVICES["bigquery"]
        stopped = time.time() - self.began
        stack.stop_service(service, self.config)
        time.sleep(5)
        stack.start_service(service, self.config)
        back = time.time() - self.began
        self.faults.append(("BigQuery emulator restart", stopped, back))
        console.print(f"soak: BigQuery emulator stopped at {stopped:.0f} s, answering again at {back:.0f} s")

    def poll(self) -> None:
        """How many rows ride_events holds and its newest publish time (nothing while BigQuery is away)."""
        try:
            query = (
                f"SELECT COUNT(*) AS n, UNIX_MILLIS(MAX(published_at)) AS p FROM `{self.dataset}.ride_events`"
            )
            row = next(iter(self.bq.query(query).result()))
        except (GoogleAPIError, OSError):
            return
        self.polls.append((time.time(), row["n"], (row["p"] or 0) / 1000))

    def sample(self, process) -> None:
        def rss(name: str) -> float:
            pid = stack._read_pid(self.config, name)
            return _tree_rss_mb(pid) if pid else 0.0

        stored = freshness = lag = None
        try:
            query = (
                f"SELECT COUNT(*) AS n, UNIX_MILLIS(MAX(timestamp)) AS t FROM `{self.dataset}.ride_events`"
            )
            row = next(iter(self.bq.query(query).result()))
            if row["n"]:
                stored, freshness = row["n"], time.time() - row["t"] / 1000
                lag = time.time() - self.polls[-1][2] if self.polls and self.polls[-1][2] else None
        except (GoogleAPIError, OSError):
            pass
        sample = Sample(
            round(time.time() - self.began, 1),
            round(_tree_rss_mb(process.pid), 1),
            *(round(rss(name), 1) for name in EMULATORS),
            stored,
            round(freshness, 1) if freshness is not None else None,
            round(lag, 1) if lag is not None else None,
        )
        self.samples.append(sample)
        with open(self.samples_path, "a") as out:
            out.write(json.dumps(asdict(sample)) + "\n")
        console.print(
            f"soak {sample.t:6.0f} s: pipeline {sample.pipeline_mb:,.0f} MiB, Pub/Sub {sample.pubsub_mb:,.0f} MiB, "
            f"BigQuery {sample.bigquery_mb:,.0f} MiB, stored {sample.stored if stored is not None else '?'}, "
            f"lag {sample.lag if lag is not None else '?'} s"
        )

    def expected(self) -> tuple[dict[str, dict], Counter, dict[str, str]]:
        """From the manifest: the events (valid and late, by id), the malformed kinds, id -> malformed kind."""
        events, kinds, malformed = {}, Counter(), {}
        for line in self.manifest.open():
            record = json.loads(line)
            kinds[record["kind"]] += 1
            if record["kind"] in ("valid", "late"):
                events[record["event_id"]] = {
                    **json.loads(record["data"]),
                    "published_at": record["published_at"],
                }
            elif record["kind"] in MALFORMED_KINDS:
                malformed[record["event_id"]] = record["kind"]
        return events, kinds, malformed

    def all_stored(self) -> bool:
        if not hasattr(self, "summary") or not self.polls:
            return False
        if not hasattr(self, "_expected_count"):
            self._expected_count = len(self.expected()[0])
        return self.polls[-1][1] >= self._expected_count

    # -- the accounting ----------------------------------------------------------------------------------

    def report(self) -> dict:
        events, kinds, malformed = self.expected()
        stored = Counter(
            row["event_id"]
            for row in self.bq.query(f"SELECT event_id FROM `{self.dataset}.ride_events`").result()
        )
        lost = len(set(events) - set(stored))
        twice = sum(n - 1 for n in stored.values() if n > 1)
        unexpected = len(set(stored) - set(events))
        dead = Counter()
        dead_twice = 0
        seen_dead = Counter()
        for row in self.bq.query(f"SELECT attributes FROM `{self.dataset}.ride_dead_letter`").result():
            event_id = json.loads(row["attributes"]).get("event_id")
            seen_dead[event_id] += 1
            dead[malformed.get(event_id, "not malformed")] += 1
        dead_twice = sum(n - 1 for n in seen_dead.values() if n > 1)
        not_dead = len(set(malformed) - set(seen_dead))
        differ = self.differing_minutes(events)
        return {
            "published": sum(kinds.values()),
            "kinds": dict(kinds),
            "events": len(events),
            "lost": lost,
            "duplicated": twice,
            "unexpected": unexpected,
            "dead_lettered": dict(dead),
            "dead_lettered_twice": dead_twice,
            "malformed_not_dead_lettered": not_dead,
            "differing_minutes": differ,
            "minutes": len({_minute(e["timestamp"]) for e in events.values()}),
            **self.lags(events),
            **self.restart(),
        }

    def differing_minutes(self, events: dict[str, dict]) -> list[str]:
        windows: dict[float, list[dict]] = defaultdict(list)
        for event in events.values():
            windows[_minute(event["timestamp"])].append(event)
        want = {start: _totals(group) for start, group in windows.items()}
        query = f"SELECT * FROM `{self.dataset}.rides_per_minute` {LATEST_PANE}"
        got = {
            row["window_start"].timestamp(): (
                row["events"],
                row["pickups"],
                row["dropoffs"],
                row["passengers"],
                round(row["revenue"], 2),
                row["active_rides"],
            )
            for row in self.bq.query(query).result()
        }
        return [
            f"{datetime.fromtimestamp(start, UTC):%H:%M}: {got.get(start)} != {want[start]}"
            for start in sorted(want)
            if got.get(start) != want[start]
        ]

    def lags(self, events: dict[str, dict]) -> dict:
        """Publish-to-queryable lag of every event; p95 outside the minute after each fault."""
        published = np.sort(np.array([e["published_at"] for e in events.values()]))
        times = np.array([t for t, _, _ in self.polls])
        newest = np.maximum.accumulate(np.array([p for _, _, p in self.polls]))
        at = np.searchsorted(newest, published)  # the first poll that holds each event
        seen = at < len(times)
        lag = times[at[seen]] - published[seen]
        start = published[seen] - self.began
        calm = np.ones(len(lag), dtype=bool)
        for _, begin, end in self.faults:
            calm &= ~((start >= begin - 2) & (start <= end + FAULT_MARGIN))
        pct = lambda values, q: float(np.percentile(values, q)) if len(values) else float("nan")  # noqa: E731
        return {
            "lag_p50": pct(lag[calm], 50),
            "lag_p95": pct(lag[calm], 95),
            "lag_p95_all": pct(lag, 95),
            "lag_max": float(lag.max()) if len(lag) else float("nan"),
        }

    def restart(self) -> dict:
        """Seconds from the new pipeline's start to the first stored event published after the kill (the
        killed run cannot have stored it); the best 5-s storing rate of the next minute, to the arrival rate."""
        if not hasattr(self, "restarted_at"):
            return {}
        killed_at = self.began + next(begin for what, begin, _ in self.faults if what == "kill")
        after = [(t, n, p) for t, n, p in self.polls if t >= self.restarted_at]
        first = next((t for t, _, p in after if p > killed_at), None)
        if first is None:
            return {"storing_again": float("nan")}
        window = [(t, n) for t, n, _ in after if t <= first + 60]
        rates = [
            (n1 - n0) / (t1 - t0)
            for i, (t0, n0) in enumerate(window)
            for t1, n1 in window[i + 1 :]
            if 5 <= t1 - t0 < 7
        ]
        caught = next((t for t, _, p in after if t > first and t - p < 5), None)
        arrival = self.args.rate * (1 - self.args.duplicates - self.args.malformed)
        return {
            "storing_again": first - self.restarted_at,
            "caught_up_after": (caught - self.restarted_at) if caught else float("nan"),
            "catch_up_ratio": max(rates, default=0.0) / arrival,
        }


def _minute(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp() // 60 * 60


def _totals(group: list[dict]) -> tuple:
    return (
        len(group),
        sum(e["ride_status"] == "pickup" for e in group),
        sum(e["ride_status"] == "dropoff" for e in group),
        sum(e["passenger_count"] for e in group if e["ride_status"] == "pickup"),
        round(sum(e["meter_reading"] for e in group if e["ride_status"] == "dropoff"), 2),
        len({e["ride_id"] for e in group}),
    )


def plot(samples: list[Sample], polls, began: float, faults, title: str, path: Path = PLOT) -> Path:
    """Memory, stored rows and lag over the run, the faults marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (memory, rows, lag) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    t = [s.t / 60 for s in samples]
    for name, label in (
        ("pipeline_mb", "pipeline"),
        ("pubsub_mb", "Pub/Sub emulator"),
        ("bigquery_mb", "BigQuery emulator"),
        ("gcs_mb", "Storage emulator"),
    ):
        memory.plot(t, [getattr(s, name) for s in samples], marker=".", label=label)
    memory.set_ylabel("resident memory (MiB)")
    memory.legend(loc="upper left", fontsize=8)
    pt = [(w - began) / 60 for w, _, _ in polls]
    rows.plot(pt, [n / 1e6 for _, n, _ in polls])
    rows.set_ylabel("rows in ride_events (M)")
    lag.plot(pt, [max(0.0, w - p) for w, _, p in polls], linewidth=0.8)
    lag.set_ylabel("now - newest stored\npublish time (s)")
    lag.set_yscale("symlog", linthresh=10)
    lag.set_xlabel("minutes since publishing began")
    for what, begin, _ in faults:
        for axis in (memory, rows, lag):
            axis.axvline(begin / 60, color="red", linestyle="--", linewidth=0.8)
        memory.annotate(what, (begin / 60, memory.get_ylim()[1] * 0.95), fontsize=8, color="red")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run(ctx: BenchContext) -> list[Figure]:
    args = parse(ctx.options)
    stack.up(ctx.config, report=lambda *_: None)
    ctx.config.apply_env()
    soak = Soak(ctx, args)
    try:
        result = soak.run()
    finally:
        soak.bq.delete_dataset(soak.dataset.split(".", 1)[1], delete_contents=True, not_found_ok=True)
    with open(soak.samples_path, "a") as out:
        out.write(json.dumps({"result": result, "faults": soak.faults}) + "\n")
    what = f"{args.rate:,.0f} msg/s for {args.duration / 60:g} min"
    title = f"gcpipe bench soak: {what}" + "".join(f"; {w} at {b / 60:.1f} min" for w, b, _ in soak.faults)
    picture = plot(
        soak.samples,
        soak.polls,
        soak.began,
        soak.faults,
        title,
        PLOT if not ctx.quick else soak.samples_path.with_suffix(".png"),
    )
    console.print(f"soak: {json.dumps(result, default=str)}")
    console.print(f"soak: plot in {picture}; samples in {soak.samples_path}")
    return figures(result, soak.samples, what, args)


def figures(result: dict, samples: list[Sample], what: str, args) -> list[Figure]:
    dead = result["dead_lettered"]
    dead_note = ", ".join(f"{kind} {n:,}" for kind, n in sorted(dead.items()))
    at_five = next((s.pipeline_mb for s in samples if s.t >= 300), None)
    later = [s.pipeline_mb for s in samples if s.t > 300 and s.pipeline_mb]
    growth = (max(later) / at_five - 1) * 100 if at_five and later else float("nan")
    peak = {name: max(getattr(s, f"{name}_mb") for s in samples) for name in ("pipeline", *EMULATORS)}
    last = samples[-1]
    out = [
        Figure(
            f"soak {what}: events lost",
            result["lost"],
            "events",
            goal="0",
            met=result["lost"] == 0,
            higher_is_better=False,
            note=f"{result['events']:,} events published ({result['kinds']})",
        ),
        Figure(
            f"soak {what}: events stored twice",
            result["duplicated"],
            "events",
            goal="0",
            met=result["duplicated"] == 0,
            higher_is_better=False,
        ),
        Figure(
            f"soak {what}: malformed not dead-lettered",
            result["malformed_not_dead_lettered"],
            "messages",
            goal="0",
            met=result["malformed_not_dead_lettered"] == 0 and not result["dead_lettered_twice"],
            higher_is_better=False,
            note=f"dead-lettered by kind: {dead_note}; twice: {result['dead_lettered_twice']}",
        ),
        Figure(
            f"soak {what}: 1-minute windows differing from the manifest",
            len(result["differing_minutes"]),
            "windows",
            goal="0",
            met=not result["differing_minutes"],
            higher_is_better=False,
            note=f"of {result['minutes']}; " + "; ".join(result["differing_minutes"][:3]),
        ),
        Figure(
            f"soak {what}: pipeline memory after 5 min, most above its 5-min value",
            growth,
            "%",
            goal="<= 20%",
            met=growth <= 20,
            higher_is_better=False,
            peak_memory_mb=peak["pipeline"],
            note=f"at 5 min {at_five or 0:,.0f} MiB",
        ),
        Figure(
            f"soak {what}: BigQuery emulator memory, peak",
            peak["bigquery"],
            "MiB",
            higher_is_better=False,
            peak_memory_mb=peak["bigquery"],
            note=f"at the end {last.bigquery_mb:,.0f} MiB",
        ),
        Figure(
            f"soak {what}: Pub/Sub emulator memory, peak",
            peak["pubsub"],
            "MiB",
            higher_is_better=False,
            peak_memory_mb=peak["pubsub"],
            note=f"at the end {last.pubsub_mb:,.0f} MiB",
        ),
        Figure(
            f"soak {what}: p95 publish -> queryable lag outside the minute after each fault",
            result["lag_p95"],
            "s",
            goal="< 10 s",
            met=result["lag_p95"] < 10,
            higher_is_better=False,
            note=f"p50 {result['lag_p50']:.1f} s; p95 over the whole run {result['lag_p95_all']:.1f} s, "
            f"max {result['lag_max']:.0f} s",
        ),
    ]
    if "storing_again" in result:
        out += [
            Figure(
                f"soak {what}: storing again after SIGKILL + restart",
                result["storing_again"],
                "s",
                goal="<= 10 s",
                met=result["storing_again"] <= 10,
                higher_is_better=False,
                note=f"from the new process's start ({RESTART_PAUSE} s after the kill) to the first event published "
                f"after the kill stored; lag under 5 s again {result.get('caught_up_after', 0):.0f} s after it",
            ),
            Figure(
                f"soak {what}: storing rate after the restart (best 5 s of its first minute) / arrival rate",
                result.get("catch_up_ratio", float("nan")),
                "x",
                goal=">= 2x",
                met=result.get("catch_up_ratio", 0) >= 2,
            ),
        ]
    return out
