"""Which runner runs a pipeline, and why: every runner name a Beam user types, decided before anything runs.

Beam 2.77's ``DirectRunner`` (an alias of ``SwitchingDirectRunner``) first tries Prism, a runner it
downloads from GitHub when a run starts (offline the download fails), then falls back to the FnApiRunner,
a batch runner: on it a streaming pipeline's Pub/Sub source reads nothing and the run ends at once, having
consumed nothing. So each name that means "run it here" runs on the local runner that runs the pipeline
fully: the FnApiRunner for a batch pipeline (what ``DirectRunner`` picks for one after Prism), and the
``BundleBasedDirectRunner`` for a streaming one (the DirectRunner's streaming engine, the one local runner
Beam's Pub/Sub I/O supports, beam #27443). ``PrismRunner`` stops the run with one sentence (a download at
run time); ``DataflowRunner`` goes as asked; any other name stops it naming the runners that work.
"""

from __future__ import annotations

from dataclasses import dataclass

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from gcpipe.core.errors import GcpipeError

BATCH, STREAMING = "FnApiRunner", "BundleBasedDirectRunner"  # the local runner of each kind of pipeline
DIRECT = ("direct", "switchingdirect")  # what Beam's DirectRunner is called, as canonical keys


class RunnerError(GcpipeError):
    """A runner that cannot run this pipeline here."""


@dataclass(frozen=True)
class RunnerChoice:
    runner: str  # the name Beam is given
    reason: str  # why, in a few words (logged at INFO)

    @property
    def on_dataflow(self) -> bool:
        return self.runner == "DataflowRunner"


def canonical(name: str) -> str:
    """``DirectRunner``, ``direct``, ``apache_beam.runners.direct.direct_runner.DirectRunner`` -> ``direct``
    (Beam's own lookup: the class name, any case, ``Runner`` optional)."""
    return name.rsplit(".", 1)[-1].lower().removesuffix("runner")


def runner_help(streaming: bool) -> str:
    here = (
        "no --runner, DirectRunner, direct, SwitchingDirectRunner or BundleBasedDirectRunner (each runs it "
        "on Beam's BundleBasedDirectRunner, the DirectRunner's streaming engine)"
        if streaming
        else "no --runner, DirectRunner, direct, SwitchingDirectRunner or FnApiRunner (each runs it on Beam's "
        "FnApiRunner, the DirectRunner's batch engine), or BundleBasedDirectRunner (slower)"
    )
    refused = "PrismRunner and FnApiRunner stop" if streaming else "PrismRunner stops"
    return (
        f"Where the pipeline runs. Here: {here}. On Google Cloud: DataflowRunner (with --project, --region, "
        f"--temp_location). {refused} the run at once, saying which runner works (Beam downloads Prism "
        "from GitHub when a run starts)."
    )


def choose_runner(options: PipelineOptions, streaming: bool) -> RunnerChoice:
    """Set ``options``' runner to the one that runs the pipeline, or say in one sentence which does."""
    standard = options.view_as(StandardOptions)
    choice = _choose(standard.runner, streaming)
    standard.runner = choice.runner
    return choice


def _choose(asked: str | None, streaming: bool) -> RunnerChoice:
    local = STREAMING if streaming else BATCH
    kind = "streaming" if streaming else "batch"
    if asked is None:
        return RunnerChoice(local, f"no --runner given: Beam's local {kind} runner")
    key = canonical(asked)
    if key in DIRECT:
        fallback = (
            "to its batch runner, on which the Pub/Sub source reads nothing; this is its streaming engine"
            if streaming
            else "to this same runner"
        )
        return RunnerChoice(
            local,
            f"--runner {asked}: Beam's DirectRunner would first try Prism, a download from GitHub, "
            f"then fall back {fallback}",
        )
    for runner in (local, STREAMING):  # a batch pipeline runs on the streaming engine too, if slower
        if key == canonical(runner):
            return RunnerChoice(runner, f"--runner {asked}, as asked")
    if key == "dataflow":
        return RunnerChoice("DataflowRunner", f"--runner {asked}, as asked: the job runs on Google Cloud")
    works = "--runner DirectRunner (or no --runner), which runs it here"
    if key == "prism":
        raise RunnerError(
            f"--runner {asked} cannot run here: Beam downloads Prism from GitHub when a run starts, and "
            f"nothing is downloaded at run time; use {works}."
        )
    if key == canonical(BATCH):
        raise RunnerError(f"--runner {asked} runs batch pipelines only, and this one streams: use {works}.")
    raise RunnerError(
        f"--runner {asked} is not a runner this {kind} pipeline runs on: use {works}, or DataflowRunner "
        "on Google Cloud."
    )
