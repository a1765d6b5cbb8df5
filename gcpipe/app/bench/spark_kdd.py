"""Spark KDD analysis: the real 10% file end to end, JVM start included, against the lab's way; then 4x.

* ours: ``python -m spark_jobs.kdd_analysis`` (DataFrame API, one pass, small results from the driver);
* baseline: ``python -m gcpipe.app.bench.kdd_lab_baseline``, the same analysis the lab's way (RDD lambdas with
  map/filter/reduceByKey, then SQLContext), with the same local Spark settings.

Both are whole processes timed from start to exit (JVM start included), on the real file when it is
there (``../shared/data/kddcup99``), else on the generated equivalent. The scaling run uses a generated
file four times the 10% file's size (cached in the bench folder). Then ours on gs:// (the local storage
emulator's bucket, through Google's GCS connector, as on Dataproc) against ours on the local folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gcpipe.app.bench import BenchContext, Figure, measure
from gcpipe.core.config import PROJECT_ROOT, load_config
from gcpipe.datagen.kdd import write_kdd
from gcpipe.local import stack
from gcpipe.spark.jobs import stage_in_bucket

TEN_PERCENT = 494_021
REAL_FILE = Path("kddcup99") / "kddcup.data_10_percent.gz"
LAB_WAY = "the lab's way: RDD map/filter/reduceByKey + SQLContext"


def shared_data() -> Path | None:
    """The real 10% file in ../shared/data beside the project (or beside the worktrees' folder)."""
    for root in (PROJECT_ROOT.parent, PROJECT_ROOT.parent.parent):
        if (root / "shared" / "data" / REAL_FILE).exists():
            return root / "shared" / "data" / REAL_FILE
    return None


def generated(ctx: BenchContext, rows: int) -> Path:
    path = ctx.workdir / f"kdd-{rows}.gz"
    if not path.exists():
        write_kdd(path, rows)
    return path


def ours(path: str, output: str, env: dict[str, str] | None = None):
    return measure(
        [sys.executable, "-m", "spark_jobs.kdd_analysis", "--input", path, "--output", output], env
    )


def on_bucket(ctx: BenchContext, path: Path, rows: int, what: str) -> Figure:
    """The same run with input and output on gs:// of the local bucket, against the local folder."""
    config = load_config(target="local")
    stack.up(config, ["metadata", "gcs"], report=lambda *_: None)
    uri = f"{config.bucket}/bench/kdd/{path.name}"
    stage_in_bucket(config, path, uri)
    folder = ours(str(path), str(ctx.workdir / "kdd-out"))
    bucket = ours(uri, f"{config.bucket}/bench/kdd-out", config.emulator_env())
    return Figure(
        f"KDD analysis on gs:// (GCS connector, storage emulator), {what} ({rows:,} rows)",
        bucket.seconds,
        "s",
        baseline=folder.seconds,
        baseline_name="the same job on the local folder",
        goal="<= 1.2x the local folder's time",
        met=None if ctx.quick else bucket.seconds <= 1.2 * folder.seconds,
        peak_memory_mb=bucket.peak_memory_mb,
        higher_is_better=False,
    )


def run(ctx: BenchContext) -> list[Figure]:
    real = None if ctx.quick else shared_data()
    rows = ctx.size(TEN_PERCENT, 50_000)
    source = real or generated(ctx, rows)
    what = "the real 10% file" if real else "a generated file"
    figures = []
    for scale, path in ((1, source), (4, generated(ctx, 4 * rows))):
        job = ours(str(path), str(ctx.workdir / "kdd-out"))
        lab = measure(
            [
                sys.executable,
                "-m",
                "gcpipe.app.bench.kdd_lab_baseline",
                str(path),
                str(ctx.workdir / "kdd-lab"),
            ]
        )
        speedup = lab.seconds / job.seconds
        name = (
            f"KDD analysis, {what} ({scale * rows:,} rows), JVM start included"
            if scale == 1
            else (f"KDD analysis, generated {scale}x ({scale * rows:,} rows), JVM start included")
        )
        goal = "<= 12 s" if scale == 1 else ">= 3x"
        met = None if ctx.quick else (job.seconds <= 12 if scale == 1 else speedup >= 3)
        figures.append(
            Figure(
                name,
                job.seconds,
                "s",
                baseline=lab.seconds,
                baseline_name=LAB_WAY,
                goal=goal,
                met=met,
                peak_memory_mb=job.peak_memory_mb,
                higher_is_better=False,
            )
        )
        figures.append(
            Figure(
                f"KDD analysis throughput at {scale}x",
                scale * rows / job.seconds,
                "rows/s",
                baseline=scale * rows / lab.seconds,
                baseline_name=LAB_WAY,
            )
        )
    figures.append(on_bucket(ctx, source, rows, what))
    return figures
