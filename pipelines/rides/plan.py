"""The streaming options resolved into what a run does: the I/O, the tables, the subscription, the rebuild."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.rides.options import RideOptions
from pipelines.rides.rebuild import Rebuild, windows_since

TABLES = ("ride_events", "ride_dead_letter", "rides_per_minute", "rides_by_area")


@dataclass(frozen=True)
class RidePlan:
    io: str  # batched (the local runner) or beam (Beam's Pub/Sub and BigQuery I/O)
    project: str
    tables: dict[str, str]  # each of TABLES -> project.dataset.table
    subscription: str | None  # None: ReadFromPubSub makes its own, for ``topic`` (--io beam)
    rotate: bool  # its own subscription (--input_topic) on the emulator: rotated (subscriptions.py)
    topic: str | None
    on_dataflow: bool
    allowed_lateness: float
    firing_seconds: int
    area_firing_seconds: int
    dedup_seconds: float  # 0: no memory (on Dataflow the reader de-duplicates)
    rebuild: Rebuild | None  # --io batched: the state to rebuild at start from what ride_events holds
    duration_seconds: float | None
    batch_size: int
    batch_seconds: float
    max_outstanding: int
    watermark_delay: float
    load_events: bool  # --events_write_method load_jobs

    @classmethod
    def of(
        cls,
        ride: RideOptions,
        project: str,
        tables: dict[str, str],
        subscription: str | None,
        on_dataflow: bool,
        now: float,
        emulated: bool = False,
    ) -> RidePlan:
        """``emulated``: Pub/Sub is the local emulator, which keeps every message a subscription acknowledged."""
        since = (
            windows_since(ride.allowed_lateness, ride.replay_seconds, now) if ride.io == "batched" else None
        )
        dedup_seconds = 0 if on_dataflow else ride.dedup_seconds
        return cls(
            io=ride.io,
            project=project,
            tables=tables,
            subscription=subscription,
            rotate=emulated and ride.io == "batched" and not ride.input_subscription,
            topic=ride.input_topic,
            on_dataflow=on_dataflow,
            allowed_lateness=ride.allowed_lateness,
            firing_seconds=ride.firing_seconds,
            area_firing_seconds=ride.area_firing_seconds,
            # On Dataflow the reader de-duplicates by id_label itself, and a per-worker memory would drop the
            # messages of retried bundles; the DirectRunner has no id_label and retries nothing: remember here.
            dedup_seconds=dedup_seconds,
            rebuild=Rebuild(tables["ride_events"], since, dedup_seconds) if since is not None else None,
            duration_seconds=ride.duration_seconds,
            batch_size=ride.batch_size,
            batch_seconds=ride.batch_seconds,
            max_outstanding=ride.max_outstanding,
            watermark_delay=ride.watermark_delay,
            load_events=ride.events_write_method == "load_jobs",
        )

    @property
    def since(self) -> float | None:
        """Windows that start earlier are not written (the rebuild holds part of their events)."""
        return self.rebuild.windows_since if self.rebuild else None
