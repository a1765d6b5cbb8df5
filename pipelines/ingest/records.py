"""Split CSV bytes into records, vectorised: where each record starts and ends, its line, its field count.

A record is one CSV row: usually one physical line, more when a quoted field holds newlines. The splitter
works on whole blocks with numpy (positions of newlines, delimiters and quotes), so a block of a million
rows costs a few array passes rather than a Python loop. Quotes follow RFC 4180 as pyarrow and Python's
``csv`` read them: a quote opens a quoted field only at the start of a field, ``""`` inside one is a
literal quote. When a block's quoting is well formed (the usual case), every quote toggles the
"inside quotes" state and the split is pure numpy; otherwise a short loop over the runs of quotes (not
over the bytes) finds the quoted spans exactly.

Line numbers are 1-based physical lines of the file, so a dead letter's ``line`` is where an editor shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEWLINE, CR, COMMA, QUOTE = ord("\n"), ord("\r"), ord(","), ord('"')
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Records:
    """The complete records of a block: byte spans (line ending excluded), lines and field counts."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    fields: np.ndarray
    quoted: bool  # the block holds quote characters (pyarrow must then allow newlines in values)
    consumed: int  # bytes of ``data`` the records cover; the rest is an unfinished record
    newlines: int  # newlines in the consumed bytes (the next block's first line is lines[0] + this)
    unterminated: bool = False  # the last record ends inside a quoted field (only at the end of a file)

    def __len__(self) -> int:
        return len(self.starts)

    def raw(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]]

    def text(self, i: int) -> str:
        """The record as text, undecodable bytes escaped (``\\xff``)."""
        return self.raw(i).decode("utf-8", errors="backslashreplace")

    def select(self, keep: np.ndarray) -> bytes:
        """The records where ``keep`` is True, as CSV bytes, each ending with a newline."""
        pieces = []
        for first, stop in _runs(np.flatnonzero(keep)):  # consecutive records are contiguous bytes
            pieces += [self.data[self.starts[first] : self.ends[stop - 1]], b"\n"]
        return b"".join(pieces)


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs in sorted ``indices`` as (first, last + 1) pairs."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1)
    firsts = np.concatenate(([indices[0]], indices[breaks + 1]))
    lasts = np.concatenate((indices[breaks], [indices[-1]])) + 1
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def split_records(data: bytes, first_line: int = 1, final: bool = True) -> Records:
    """The complete records of ``data``, which starts at a record boundary on line ``first_line``.

    With ``final`` False the bytes after the last record boundary are left unconsumed (the caller
    prepends them to the next block); with ``final`` True they are the last record.
    """
    buf = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(buf == NEWLINE)
    quoted = QUOTE in buf
    toggles = _quote_toggles(buf) if quoted else None
    boundaries = newlines if toggles is None else newlines[_even(toggles, newlines)]
    if final and len(data) and (not len(boundaries) or boundaries[-1] != len(data) - 1):
        consumed = len(data)
        ends = np.append(boundaries, len(data))
    else:
        consumed = int(boundaries[-1]) + 1 if len(boundaries) else 0
        ends = boundaries
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == CR))  # CRLF
    delimiters = np.flatnonzero(buf[:consumed] == COMMA)
    if toggles is not None:
        delimiters = delimiters[_even(toggles, delimiters)]
    fields = np.searchsorted(delimiters, ends) - np.searchsorted(delimiters, starts) + 1
    return Records(
        data=data,
        starts=starts,
        ends=ends,
        lines=first_line + np.searchsorted(newlines, starts),
        fields=fields,
        quoted=quoted,
        consumed=consumed,
        newlines=int(np.searchsorted(newlines, consumed)),
        unterminated=bool(final and toggles is not None and len(toggles) % 2 and len(starts)),
    )


def _even(toggles: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """True where a position lies outside quotes: an even number of toggles before it."""
    return np.searchsorted(toggles, positions) % 2 == 0


def _quote_toggles(buf: np.ndarray) -> np.ndarray:
    """Sorted positions where the inside-quotes state flips; a position is quoted after an odd number."""
    quotes = np.flatnonzero(buf == QUOTE)
    breaks = np.flatnonzero(np.diff(quotes) != 1) + 1
    run_starts = quotes[np.concatenate(([0], breaks))]
    run_lengths = np.diff(np.concatenate(([0], breaks, [len(quotes)])))
    run_ends = run_starts + run_lengths  # first byte after the run
    padded = np.concatenate(([NEWLINE], buf, [NEWLINE]))  # what lies before the first / after the last byte
    before, after = padded[run_starts], padded[run_ends + 1]
    at_field_start = (before == COMMA) | (before == NEWLINE)
    at_field_end = (after == COMMA) | (after == NEWLINE) | (after == CR)
    outside = (np.cumsum(run_lengths) - run_lengths) % 2 == 0  # the state before each run, if all toggle
    closes = (run_lengths % 2 == 1) != outside  # after the run the field is closed again
    if np.all(~outside | at_field_start) and np.all(~closes | at_field_end):
        return quotes  # well formed: every quote toggles
    toggles, inside = [], False
    for start, length, opens in zip(
        run_starts.tolist(), run_lengths.tolist(), at_field_start.tolist(), strict=True
    ):
        remaining = length
        if not inside:
            if not opens:
                continue  # a quote inside an unquoted field is a literal character
            toggles.append(start)
            inside, remaining = True, length - 1
        if remaining % 2 == 1:  # pairs are escaped quotes; an odd one out closes the field
            toggles.append(start + length - 1)
            inside = False
    return np.asarray(toggles, dtype=np.int64)
