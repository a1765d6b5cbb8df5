"""Job options as a command line gives them: ``--name value`` or ``--name=value``, in order.

One reader for every place gcpipe takes a job's options as words (the Spark jobs' arguments, the flex
templates' parameters), so both accept the same forms.
"""

from __future__ import annotations

from gcpipe.core.errors import GcpipeError


def option_pairs(
    args: list[str] | tuple[str, ...], what: str = "the options", error: type[GcpipeError] = GcpipeError
) -> list[tuple[str, str | None]]:
    """``(--name, value)`` pairs in order; a name with no value (followed by another option, or last) has
    None. A word that is not an option raises ``error``, saying how to give ``what``."""
    pairs: list[tuple[str, str | None]] = []
    tokens = list(args)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            raise error(f"{token!r} is not an option: give {what} as --name value or --name=value.")
        name, has_value, value = token.partition("=")
        if not has_value and tokens and not tokens[0].startswith("--"):
            value, has_value = tokens.pop(0), "="
        pairs.append((name, value if has_value else None))
    return pairs
