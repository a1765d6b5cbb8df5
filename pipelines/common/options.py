"""Pipeline options the Beam way, read strictly, with a ``--help`` that lists them all.

Each pipeline declares its options once, in a ``PipelineOptions`` subclass (``_add_argparse_args``): Beam
reads them from the command line (and carries them to Dataflow), ``--help`` prints them, and the flex
templates' ``metadata.json`` declare the same names with the same help text (a test holds them together).
:func:`parse_options` adds what Beam does not do: a ``--help`` of this pipeline's own, and an unknown or
mistyped option stopping the run with one sentence (Beam only warns "Discarding unparseable args" and
runs on without it). Beam's own options (``--project``, ``--region``, ``--temp_location``, ``--streaming``,
``--experiments``, ...) pass through as Beam defines them.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from gcpipe.core.errors import GcpipeError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Beam's options a user of these pipelines meets most; --help shows them, and every other passes through.
BEAM_OPTIONS_SHOWN = (
    "project",
    "region",
    "temp_location",
    "job_name",
    "streaming",
    "save_main_session",
    "experiments",
    "sdk_container_image",
    "sdk_location",
)


class OptionError(GcpipeError):
    """An option the pipeline does not know, or a value it cannot read."""


class LaunchOptions(PipelineOptions):
    """How the run reports itself (both pipelines)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--log_level", default="INFO", help=f"What the run logs: {', '.join(LOG_LEVELS)}."
        )
        parser.add_argument(
            "--progress_seconds",
            type=float,
            default=10,
            help="Log the run's counters every N seconds while it runs here (0: never).",
        )


class _StrictParser(_BeamArgumentParser):
    """Beam's own parser (it knows ValueProvider arguments), its errors raised as one sentence."""

    def error(self, message):
        raise OptionError(f"{message}.")


def _option_classes(own: Sequence[type[PipelineOptions]]) -> list[type[PipelineOptions]]:
    """Beam's option classes and this pipeline's (not another pipeline's, imported in the same process)."""
    beam = [cls for cls in PipelineOptions.__subclasses__() if cls.__module__.startswith("apache_beam.")]
    unique = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in [*beam, *own, LaunchOptions]}
    return list(unique.values())


def parse_options(
    argv: Sequence[str] | None, own: Sequence[type[PipelineOptions]], help_parser: argparse.ArgumentParser
) -> PipelineOptions:
    """``argv`` as Beam's ``PipelineOptions``, once every argument is known; ``--help`` prints
    ``help_parser``'s help and exits."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        help_parser.print_help()
        raise SystemExit(0)
    parser = _StrictParser(allow_abbrev=False, add_help=False)
    for cls in _option_classes(own):
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(argv)
    if unknown:
        raise OptionError(_unknown(unknown[0], parser, own))
    return PipelineOptions(argv)


def _unknown(arg: str, parser: argparse.ArgumentParser, own: Sequence[type[PipelineOptions]]) -> str:
    if not arg.startswith("-"):
        return f"unexpected argument {arg!r}: options are written --name value (--help lists them)."
    name = arg.split("=", 1)[0]
    ours = [o for o in _option_strings(own) if o.startswith("--")]
    every = [o for action in parser._actions for o in action.option_strings]
    # a close match among this pipeline's own options is the likelier meaning, then Beam's
    match = difflib.get_close_matches(name, ours, n=1) or difflib.get_close_matches(name, every, n=1)
    if match:
        return f"unknown option {name}; did you mean {match[0]}?"
    return f"unknown option {name}; --help lists the options."


def _option_strings(classes: Sequence[type[PipelineOptions]]) -> list[str]:
    parser = argparse.ArgumentParser(add_help=False)
    for cls in [*classes, LaunchOptions]:
        cls._add_argparse_args(parser)
    return [o for action in parser._actions for o in action.option_strings]


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's default after its meaning, unless it says it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, [], "", argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def help_parser(
    module: str, doc: str, own: Sequence[type[PipelineOptions]], runner_help: str
) -> argparse.ArgumentParser:
    """The parser ``--help`` prints: the pipeline's docstring, its options, the runner and the logs, and
    the Beam options used most (every other Beam option passes through too)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc.replace("``", "").replace("::\n", ":\n"),
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    for cls in own:
        cls._add_argparse_args(parser.add_argument_group((cls.__doc__ or cls.__name__).strip()))
    runs = parser.add_argument_group("Where it runs and what it says")
    runs.add_argument("--runner", help=runner_help)
    LaunchOptions._add_argparse_args(runs)
    beam = _BeamArgumentParser(allow_abbrev=False, add_help=False)
    for cls in _option_classes([]):
        if cls is not LaunchOptions:
            cls._add_argparse_args(beam)
    by_name = {o: action for action in beam._actions for o in action.option_strings}
    shown = parser.add_argument_group(
        "Beam's pipeline options (these, and every other Beam option, pass through to Beam)"
    )
    for name in BEAM_OPTIONS_SHOWN:
        shown._add_action(by_name[f"--{name}"])
    return parser
