"""Spark KDD analysis: the real 10% file end to end, JVM start included, against the lab's way; then 4x.

* ours: ``python -m spark_jobs.kdd_analysis`` (DataFrame API, one pass, small results from the driver);
* baseline: ``python -m gcpipe.app.bench.kdd_lab_baseline``, the same analysis the lab's way (RDD lambdas with
  map/filter/reduceByKey, then SQLContext), with the same local Spark settings.

Both are whole processes timed from start to exit (JVM start included), on the real file when it is
there (``../shared/data/kddcup99``), else on the generated equivalent. The scaling run uses a generated
file four times the 10% file's size (cached in the bench folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gcpipe.app.bench import BenchContext, Figure, measure
from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.kdd import write_kdd

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


def run(ctx: BenchContext) -> list[Figure]:
    real = None if ctx.quick else shared_data()
    rows = ctx.size(TEN_PERCENT, 50_000)
    source = real or generated(ctx, rows)
    what = "the real 10% file" if real else "a generated file"
    figures = []
    for scale, path in ((1, source), (4, generated(ctx, 4 * rows))):
        ours = measure(
            [
                sys.executable,
                "-m",
                "spark_jobs.kdd_analysis",
                "--input",
                str(path),
                "--output",
                str(ctx.workdir / "kdd-out"),
            ]
        )
        lab = measure(
            [
                sys.executable,
                "-m",
                "gcpipe.app.bench.kdd_lab_baseline",
                str(path),
                str(ctx.workdir / "kdd-lab"),
            ]
        )
        speedup = lab.seconds / ours.seconds
        name = (
            f"KDD analysis, {what} ({scale * rows:,} rows), JVM start included"
            if scale == 1
            else (f"KDD analysis, generated {scale}x ({scale * rows:,} rows), JVM start included")
        )
        goal = "< 20 s and >= 2x" if scale == 1 else ""
        met = (ours.seconds < 20 and speedup >= 2) if scale == 1 and not ctx.quick else None
        figures.append(
            Figure(
                name,
                ours.seconds,
                "s",
                baseline=lab.seconds,
                baseline_name=LAB_WAY,
                goal=goal,
                met=met,
                peak_memory_mb=ours.peak_memory_mb,
                higher_is_better=False,
            )
        )
        figures.append(
            Figure(
                f"KDD analysis throughput at {scale}x",
                scale * rows / ours.seconds,
                "rows/s",
                baseline=scale * rows / lab.seconds,
                baseline_name=LAB_WAY,
            )
        )
    return figures
