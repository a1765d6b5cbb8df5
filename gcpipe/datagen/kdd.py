"""KDD Cup 99 connection records: 42 comma-separated columns, no header, label ending in a dot.

Labels follow the distribution of the real 10% file (smurf 57%, neptune 22%, normal 20%, then 20
rarer attacks), and each label's protocol/service/flag mix, byte counts, durations and rates follow that
label's profile in the real file, so aggregates by protocol, label and attack category look the same.

``malformed`` spoils that fraction of lines, spread evenly over ``MALFORMED_KINDS``:
``wrong_column_count`` (a field missing), ``non_numeric`` (text in a numeric column) and
``empty_field`` (a REQUIRED cell left empty) and ``out_of_range`` (a negative or overflowing count, outside
the range sql/tables.json sets).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gcpipe.core.kdd import ATTACK_CATEGORY, MALFORMED_KINDS
from gcpipe.core.schemas import load_schema
from gcpipe.datagen.lines import write_lines

CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class Profile:
    count: int  # rows with this label in the real 10% file
    mix: tuple[tuple[str, str, str, float], ...]  # (protocol, service, flag, share)
    src_bytes: float  # median
    dst_bytes: float
    duration: float  # mean seconds
    logged_in: float  # probability
    count_conn: float  # median of the `count` feature
    serror: float
    rerror: float
    extras: dict[str, float] = field(default_factory=dict)  # Poisson means of rarer counters


# One label a line: its count in the real 10% file, service mix, byte and duration medians, rates, extras.
PROFILES: dict[str, Profile] = {
    label: Profile(**{**fields, "mix": tuple(map(tuple, fields["mix"]))})
    for label, fields in json.loads((Path(__file__).parent / "kdd_profiles.json").read_text()).items()
}
assert set(PROFILES) == set(ATTACK_CATEGORY)


@dataclass
class KddManifest:
    path: str
    seed: int
    rows: int
    valid: int
    labels: dict[str, int]
    malformed: dict[str, int]


def _rate(rng: np.random.Generator, mean: float, n: int) -> np.ndarray:
    """Rates in [0, 1] at two decimals, mostly 0 or 1 like the real file, averaging ``mean``."""
    return np.round(
        np.where(rng.random(n) < mean, rng.uniform(0.9, 1.0, n), rng.uniform(0, 0.05, n) * (mean > 0)), 2
    )


def generate_connections(rng: np.random.Generator, n: int) -> pa.Table:
    labels = list(PROFILES)
    weights = np.array([PROFILES[label].count for label in labels], dtype=float)
    per_label = rng.multinomial(n, weights / weights.sum())
    names = load_schema("kdd_connections").names
    parts = []
    for label, size in zip(labels, per_label, strict=True):
        if size == 0:
            continue
        p = PROFILES[label]
        combo = rng.choice(
            len(p.mix), size=size, p=np.array([m[3] for m in p.mix]) / sum(m[3] for m in p.mix)
        )
        cols: dict[str, np.ndarray] = {name: np.zeros(size, dtype=np.int64) for name in names}
        cols["protocol_type"] = np.array([m[0] for m in p.mix])[combo]
        cols["service"] = np.array([m[1] for m in p.mix])[combo]
        cols["flag"] = np.array([m[2] for m in p.mix])[combo]
        spread = 0.05 if label in ("smurf", "pod") else 0.6
        cols["src_bytes"] = np.round(p.src_bytes * rng.lognormal(0, spread, size)).astype(np.int64)
        cols["dst_bytes"] = np.round(p.dst_bytes * rng.lognormal(0, 0.8, size)).astype(np.int64)
        cols["duration"] = rng.poisson(p.duration, size) * (
            rng.random(size) < (0.1 if p.duration > 100 else 1)
        )
        cols["logged_in"] = (rng.random(size) < p.logged_in).astype(np.int64)
        count = np.clip(rng.poisson(p.count_conn, size), 1, 511)
        cols["count"] = count
        cols["srv_count"] = np.clip(count - rng.poisson(1, size), 1, 511)
        cols["land"] = np.full(size, int(label == "land"))
        for name, mean in p.extras.items():
            cols[name] = rng.poisson(mean, size)
        serror, rerror = _rate(rng, p.serror, size), _rate(rng, p.rerror, size)
        same_srv = _rate(rng, 0.95 if p.serror + p.rerror < 0.5 else 0.1, size)
        for prefix in ("", "srv_", "dst_host_", "dst_host_srv_"):
            cols[f"{prefix}serror_rate"] = serror
            cols[f"{prefix}rerror_rate"] = rerror
        cols["same_srv_rate"] = cols["dst_host_same_srv_rate"] = same_srv
        cols["diff_srv_rate"] = cols["dst_host_diff_srv_rate"] = np.round(1 - same_srv, 2) * (
            rng.random(size) < 0.3
        )
        cols["srv_diff_host_rate"] = _rate(rng, 0.1, size)
        cols["dst_host_count"] = np.clip(rng.poisson(200, size), 1, 255)
        cols["dst_host_srv_count"] = np.clip(np.round(cols["dst_host_count"] * same_srv), 0, 255).astype(
            np.int64
        )
        cols["dst_host_same_src_port_rate"] = _rate(rng, 0.8 if p.mix[0][0] == "icmp" else 0.1, size)
        cols["dst_host_srv_diff_host_rate"] = _rate(rng, 0.05, size)
        cols["label"] = np.full(size, f"{label}.")
        parts.append(pa.table({name: cols[name] for name in names}))
    table = pa.concat_tables(parts)
    return table.take(rng.permutation(n))


def _spoil(line: bytes, kind: str, rng: np.random.Generator) -> bytes:
    cells = line.split(b",")
    if kind == "wrong_column_count":
        del cells[int(rng.integers(0, len(cells)))]
    elif kind == "non_numeric":
        cells[int(rng.choice([0, 4, 5, 22, 24]))] = b"n/a"
    elif kind == "empty_field":
        cells[int(rng.choice([1, 4, 41]))] = b""
    elif kind == "out_of_range":
        cells[int(rng.choice([0, 4, 5]))] = rng.choice([b"-1", b"5000000000000000000"])
    return b",".join(cells)


def write_kdd(path: str | Path, rows: int, seed: int = 42, malformed: float = 0.0) -> KddManifest:
    """Write ``rows`` connection lines (gzip if the name ends in .gz); return the ground truth."""
    rng = np.random.default_rng(seed)
    labels: dict[str, int] = {}

    def make_chunk(n: int, spoiled: np.ndarray) -> list[bytes]:
        table = generate_connections(rng, n)
        valid = np.ones(n, dtype=bool)
        valid[spoiled] = False
        for item in pc.value_counts(table["label"].filter(pa.array(valid))).to_pylist():
            labels[item["values"]] = labels.get(item["values"], 0) + item["counts"]
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        return buffer.getvalue().splitlines()

    kinds = write_lines(
        path, rows, rng, malformed, MALFORMED_KINDS, make_chunk, _spoil, CHUNK_ROWS, "KDD connections"
    )
    return KddManifest(str(path), seed, rows, rows - sum(kinds.values()), labels, kinds)
