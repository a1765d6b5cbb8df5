"""Writing generated lines in chunks, with a given fraction spoiled: the skeleton every CSV generator shares."""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gcpipe.core.ui import progress


def write_lines(
    path: str | Path,
    rows: int,
    rng: np.random.Generator,
    malformed: float,
    kinds: Sequence[str],
    make_chunk: Callable[[int, np.ndarray], list[bytes]],
    spoil: Callable[[bytes, str, np.random.Generator], bytes],
    chunk_rows: int,
    label: str,
    header: bytes | None = None,
) -> dict[str, int]:
    """Write ``rows`` lines (gzip if the name ends in .gz); return how many of each kind were spoiled.

    ``make_chunk(n, spoiled)`` makes the next ``n`` lines (``spoiled``: the indexes in the chunk that
    will be spoiled, for generators that count what stays valid). The ``malformed`` fraction of lines,
    chosen at random, is spread evenly over ``kinds``; ``spoil(line, kind, rng)`` spoils one line.
    """
    if not 0 <= malformed <= 1:
        raise ValueError("malformed must be a fraction between 0 and 1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spoiled = np.sort(rng.choice(rows, size=round(rows * malformed), replace=False))
    kind_of = np.resize(np.arange(len(kinds)), len(spoiled))
    rng.shuffle(kind_of)
    counts = dict.fromkeys(kinds, 0)
    opener = functools.partial(gzip.open, compresslevel=5) if path.suffix == ".gz" else open
    with opener(path, "wb") as out, progress(f"{label} -> {path.name}", rows) as advance:
        if header is not None:
            out.write(header + b"\n")
        for offset in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - offset)
            here = (spoiled >= offset) & (spoiled < offset + n)
            lines = make_chunk(n, spoiled[here] - offset)
            for index, kind in zip((spoiled[here] - offset).tolist(), kind_of[here].tolist(), strict=True):
                lines[index] = spoil(lines[index], kinds[kind], rng)
                counts[kinds[kind]] += 1
            out.write(b"\n".join(lines) + b"\n")
            advance(n)
    return counts
