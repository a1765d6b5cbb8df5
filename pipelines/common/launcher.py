"""The command line around a pipeline's ``run``: its logs, its progress, its accounting, its one sentence.

* Logs: the pipelines' own (``pipelines.*``, ``gcpipe.*``) at ``--log_level`` (INFO by default) on stderr,
  Beam's and the client libraries' at WARNING (all of them at DEBUG).
* The accounting: :func:`report` logs it on the ``pipelines.result`` logger, which the command line
  prints plainly to stdout, as the run's last line.
* A :class:`GcpipeError` ends the command with ``error: <one sentence>`` and status 1, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from gcpipe.core.config import Config, load_config
from gcpipe.core.errors import GcpipeError
from pipelines.common.options import LOG_LEVELS, LaunchOptions, OptionError

RESULT = logging.getLogger("pipelines.result")
RESULT.setLevel(logging.INFO)  # the accounting is the run's result: shown whatever --log_level says
OWN_LOGGERS = ("pipelines", "gcpipe")


def target_config(options: PipelineOptions) -> Config:
    """The target's settings (the flex template's image sets GCPIPE_TARGET=gcp), the project --project's."""
    project = options.view_as(GoogleCloudOptions).project
    return load_config(project=project) if project else load_config()


def apply_log_level(options: PipelineOptions) -> LaunchOptions:
    """``--log_level`` for the pipelines' own loggers (wherever ``run`` is called); the launch options."""
    launch = options.view_as(LaunchOptions)
    level = str(launch.log_level).upper()
    if level not in LOG_LEVELS:
        raise OptionError(f"--log_level {launch.log_level}: choose one of {', '.join(LOG_LEVELS)}.")
    if not launch.progress_seconds >= 0:  # NaN too
        raise OptionError(f"--progress_seconds must be 0 (never) or more, not {launch.progress_seconds}.")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return launch


def report(line: str) -> None:
    """The run's accounting: the last line a command prints (stdout), a log line for other callers."""
    RESULT.info(line)


def _log_level(argv: Sequence[str]) -> str:
    """``--log_level``'s value before the options are read (the run checks it)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--log_level="):
            return arg.split("=", 1)[1].upper()
        if arg == "--log_level" and i + 1 < len(argv):
            return argv[i + 1].upper()
    return "INFO"


def setup_logging(level: str) -> None:
    """Handlers for a command line: logs on stderr, the accounting plain on stdout."""
    level = level if level in LOG_LEVELS else "INFO"
    logs = logging.StreamHandler(sys.stderr)
    logs.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(logs)
    root.setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)  # Beam's INFO is very chatty
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    result = logging.StreamHandler(sys.stdout)
    result.setFormatter(logging.Formatter("%(message)s"))
    RESULT.addHandler(result)
    RESULT.propagate = False


def main(run: Callable[[list[str]], object], argv: Sequence[str] | None = None) -> None:
    """``run(argv)`` as a command: logs set up first, a GcpipeError as ``error: <sentence>``, status 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging(_log_level(argv))
    try:
        run(argv)
    except GcpipeError as err:
        sys.stdout.flush()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C before the run could drain (a streaming run handles its own)
        sys.exit(130)
