"""Both Beam pipelines as a user starts them: every runner name, --help, a mistyped option, Beam's options.

The runs themselves: the CSV ingestion on each local runner name in pipelines/csv_ingest_test.py, the
streaming pipeline on each one, on the emulators, in tests/integration/test_streaming_runners.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.taxi_trips import write_trips_csv
from pipelines import csv_ingest, taxi_streaming
from pipelines.common.options import OptionError, parse_options
from pipelines.common.runners import RunnerError, choose_runner
from pipelines.ingest.options import CsvIngestOptions
from pipelines.rides.options import RideOptions

PIPELINES = {"csv_ingest": (csv_ingest, CsvIngestOptions), "taxi_streaming": (taxi_streaming, RideOptions)}
LOCAL_NAMES = [
    ["--runner", "DirectRunner"],
    ["--runner=DirectRunner"],
    ["--runner", "direct"],
    ["--runner", "SwitchingDirectRunner"],
    ["--runner", "BundleBasedDirectRunner"],
    ["--runner", "apache_beam.runners.direct.direct_runner.DirectRunner"],
    [],
]


def _command(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"pipelines.{module}", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("argv", LOCAL_NAMES, ids=lambda argv: " ".join(argv) or "no --runner")
@pytest.mark.parametrize(
    ("streaming", "runs_on"), [(False, "FnApiRunner"), (True, "BundleBasedDirectRunner")]
)
def test_every_local_runner_name_runs_on_the_runner_that_runs_the_pipeline(argv, streaming, runs_on):
    options = PipelineOptions(argv)
    choice = choose_runner(options, streaming=streaming)
    expected = "BundleBasedDirectRunner" if "BundleBasedDirectRunner" in " ".join(argv) else runs_on
    assert options.view_as(StandardOptions).runner == choice.runner == expected
    assert choice.reason  # logged at INFO: why this runner
    if "DirectRunner" in " ".join(argv) and expected != "BundleBasedDirectRunner":
        assert "Prism" in choice.reason


@pytest.mark.parametrize("streaming", [False, True])
def test_dataflow_goes_as_asked(streaming):
    options = PipelineOptions(["--runner", "DataflowRunner"])
    assert choose_runner(options, streaming=streaming).on_dataflow
    assert options.view_as(StandardOptions).runner == "DataflowRunner"


@pytest.mark.parametrize(
    ("streaming", "runner", "sentence"),
    [
        (
            False,
            "PrismRunner",
            "--runner PrismRunner cannot run here: Beam downloads Prism from GitHub when a "
            "run starts, and nothing is downloaded at run time; use --runner DirectRunner (or no --runner), "
            "which runs it here.",
        ),
        (True, "PrismRunner", "--runner PrismRunner cannot run here"),
        (
            True,
            "FnApiRunner",
            "--runner FnApiRunner runs batch pipelines only, and this one streams: use --runner DirectRunner",
        ),
        (
            False,
            "FlinkRunner",
            "--runner FlinkRunner is not a runner this batch pipeline runs on: use "
            "--runner DirectRunner (or no --runner), which runs it here, or DataflowRunner on Google Cloud.",
        ),
    ],
)
def test_a_runner_that_cannot_run_the_pipeline_here_is_one_sentence_naming_one_that_can(
    streaming, runner, sentence
):
    with pytest.raises(RunnerError) as err:
        choose_runner(PipelineOptions(["--runner", runner]), streaming=streaming)
    assert str(err.value).startswith(sentence)


@pytest.mark.parametrize("runner", ["PrismRunner", "FnApiRunner"])
def test_the_streaming_command_stops_at_once_on_a_runner_that_reads_nothing(runner, tmp_path):
    """Before any table or subscription is made: the runner is chosen first."""
    done = _command(
        "taxi_streaming",
        "--input_topic",
        "rides",
        "--output_dataset",
        "gcpipe-local:never",
        f"--runner={runner}",
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"error: --runner {runner} ") and "use --runner DirectRunner" in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("module", "args", "sentence"),
    [
        (
            "csv_ingest",
            ["--input", "x.csv", "--schema", "taxi_trips", "--tabel", "gcpipe-local:taxi.x"],
            "error: unknown option --tabel; did you mean --table?",
        ),
        (
            "taxi_streaming",
            ["--input_topic", "rides", "--output_dataset", "taxi", "--bogus"],
            "error: unknown option --bogus; --help lists the options.",
        ),
        (
            "taxi_streaming",
            ["--input_topic", "rides", "--output_dataset", "taxi", "--alowed_lateness=60"],
            "error: unknown option --alowed_lateness; did you mean --allowed_lateness?",
        ),
        (
            "taxi_streaming",
            ["--input_topic", "rides", "--output_dataset", "taxi", "--allowed_lateness", "2m"],
            "error: argument --allowed_lateness: invalid float value: '2m'.",
        ),
        (
            "csv_ingest",
            ["--input", "x.csv", "stray"],
            "error: unexpected argument 'stray': options are written --name value (--help lists them).",
        ),
    ],
)
def test_a_mistyped_option_stops_the_run_with_one_sentence(module, args, sentence):
    done = _command(module, *args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [sentence]


def test_an_option_of_the_other_pipeline_is_unknown_here_even_in_one_process():
    """The demo and the tests import both pipelines: each still knows only its own options (and Beam's)."""
    with pytest.raises(OptionError, match="unknown option --input_topic"):
        csv_ingest.run(["--input", "x.csv", "--schema", "taxi_trips", "--input_topic", "rides"])


def test_beam_s_own_options_pass_through():
    argv = [
        "--input_topic",
        "rides",
        "--output_dataset",
        "taxi",
        "--project",
        "acme",
        "--region",
        "europe-west1",
        "--temp_location",
        "gs://b/tmp",
        "--streaming",
        "--save_main_session",
        "--experiments=use_runner_v2",
        "--experiments",
        "x",
        "--labels",
        "team=data",
        "--no_use_public_ips",
        "--num_workers",
        "2",
    ]
    options = parse_options(argv, [RideOptions], taxi_streaming.build_parser())
    everything = options.get_all_options()
    assert everything["region"] == "europe-west1" and everything["experiments"] == ["use_runner_v2", "x"]
    assert options.view_as(RideOptions).input_topic == "rides"


@pytest.mark.parametrize("name", PIPELINES)
def test_help_lists_every_option_with_its_meaning_and_default(name):
    module, options = PIPELINES[name]
    done = _command(name, "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # unwrapped
    parser = module.build_parser()
    own = [a for a in parser._actions if a.option_strings and a.help and a.dest != "help"]
    assert {a.dest for a in own} >= {a.dest for a in _actions(options)} | {"runner", "log_level", "project"}
    for action in own:
        assert action.option_strings[-1] in text
        assert " ".join(action.help.split()[:4]) in text  # its meaning
        if action.default not in (None, False, [], ""):
            assert f"default: {action.default}" in text or "default" in action.help
    assert "DataflowRunner" in text and "DirectRunner" in text and "PrismRunner" in text


def _actions(options):
    import argparse

    parser = argparse.ArgumentParser()
    options._add_argparse_args(parser)
    return [a for a in parser._actions if a.dest != "help"]


def test_log_level_is_checked_and_quiets_the_run(tmp_path):
    done = _command("csv_ingest", "--input", "x.csv", "--schema", "taxi_trips", "--log_level", "LOUD")
    assert done.stderr.strip().splitlines() == [
        "error: --log_level LOUD: choose one of DEBUG, INFO, WARNING, ERROR."
    ]

    trips = write_trips_csv(tmp_path / "t.csv", 200, seed=3)
    quiet = _command(
        "csv_ingest",
        "--input",
        trips.path,
        "--schema",
        "taxi_trips",
        "--output",
        str(tmp_path / "o"),
        "--log_level",
        "WARNING",
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[-1].startswith("200 rows read = 200 valid")  # the accounting, always
    chatty = _command(
        "csv_ingest", "--input", trips.path, "--schema", "taxi_trips", "--output", str(tmp_path / "o")
    )
    assert "INFO pipelines.csv_ingest: runner FnApiRunner (no --runner given" in chatty.stderr
    assert "reading 1 file(s)" in chatty.stderr and chatty.stdout.startswith("200 rows read")
