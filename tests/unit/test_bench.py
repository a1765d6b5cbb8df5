import json
import sys

import pytest

from gcpipe.app.bench import BEGIN, END, Figure, measure, write_report
from gcpipe.core.errors import GcpipeError


def test_measure_reports_time_peak_memory_and_output():
    ballast = bytearray(128 * 1024 * 1024)  # a large parent must not inflate its children's figures
    big = measure(
        [sys.executable, "-c", "import time; x = bytearray(64 * 1024 * 1024); time.sleep(0.3); print(len(x))"]
    )
    small = measure([sys.executable, "-c", "import time; time.sleep(0.3); print('hi')"])
    assert big.stdout.strip() == str(64 * 1024 * 1024) and len(ballast)
    assert big.peak_memory_mb > 64 > 48 > small.peak_memory_mb
    assert small.seconds >= 0.3  # a lower bound: the child slept that long


def test_a_failing_command_is_one_sentence():
    with pytest.raises(GcpipeError, match=r"benchmark command failed .*boom"):
        measure([sys.executable, "-c", "import sys; sys.exit('boom')"])


def test_report_rewrites_only_the_generated_section(tmp_path):
    markdown, results = tmp_path / "BENCHMARKS.md", tmp_path / "BENCHMARKS.json"
    markdown.write_text(f"# Benchmarks\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Notes\nkept\n")
    figures = [
        Figure(
            "ingest 1M rows",
            200_000,
            "rows/s",
            baseline=40_000,
            baseline_name="per-line",
            goal=">= 4x",
            met=True,
            peak_memory_mb=812.4,
            benchmark="csv",
        ),
        Figure("train", 4.2, "s", goal="< 10 s", met=True, higher_is_better=False, benchmark="sql"),
    ]
    write_report(figures, "make bench", results, markdown)
    text = markdown.read_text()
    assert "old table" not in text and "intro" in text and "## Notes\nkept" in text
    row = (
        "| csv | ingest 1M rows | 200,000 rows/s | 40,000 rows/s (per-line) | 5.0x | >= 4x | yes | 812 MiB |"
    )
    assert row in text
    assert "| sql | train | 4.20 s | - | - | < 10 s | yes | - |" in text
    assert "Produced by `make bench` on " in text

    # Running one benchmark again replaces its figures and keeps the others'.
    again = [Figure("train", 3.0, "s", higher_is_better=False, benchmark="sql")]
    write_report(again, "gcpipe bench sql", results, markdown)
    payload = json.loads(results.read_text())
    assert [(f["benchmark"], f["ours"], f["command"]) for f in payload["figures"]] == [
        ("csv", 200_000, "make bench"),
        ("sql", 3.0, "gcpipe bench sql"),
    ]
    text = markdown.read_text()
    assert "| sql | train | 3.00 s |" in text and "4.20 s" not in text and "(csv)" in text and "(sql)" in text


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--kill-at", "900", "--duration", "600"],
            "--kill-at must fall inside the run (0 < T < --duration), not 900.",
        ),
        (["--rate", "0"], "--rate and --duration must be positive."),
    ],
)
def test_the_soak_s_options_out_of_range_are_one_sentence(argv, error):
    from gcpipe.app.bench.soak import parse

    with pytest.raises(GcpipeError) as caught:
        parse(argv)
    assert str(caught.value) == error


def test_only_the_soak_takes_options_of_its_own():
    from gcpipe.app.bench import main

    with pytest.raises(GcpipeError, match="only `gcpipe bench soak` takes options"):
        main(["csv_ingest", "--rate", "5"])
