"""PII governance before data lands, like the Cloud DLP de-identification step: hash, mask or redact columns.

``--pii email,phone:mask,home_lat:redact`` names the columns and how each is treated:

* ``hash`` (the default): HMAC-SHA256 with a secret key, hex; the same value always gives the same
  hash, so joins and counts still work, but without the key nobody can test a guess (DLP's crypto hash);
* ``mask``: every character but the last four replaced by ``#`` (DLP's character mask);
* ``redact``: NULL (any NULLABLE column).

The key never sits in code, in pipeline options (Dataflow shows those in its console) or in the pickled
pipeline: each worker reads it when it first needs it, from ``$GCPIPE_PII_KEY`` if set, else from the
key source, a file (the local target generates one under the state folder) or a Secret Manager version
(``secret:projects/P/secrets/S/versions/latest``).
Values are transformed per distinct value (dictionary encoding), so a low-cardinality column costs
almost nothing.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import re
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.core.config import Config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import Schema
from gcpipe.core.secrets import SecretError, ensure_local_secret, read_secret
from pipelines.ingest.validation import record_cells

METHODS = ("hash", "mask", "redact")
KEY_ENV = "GCPIPE_PII_KEY"


class PiiError(GcpipeError):
    """A --pii setting that cannot be applied, or a key that cannot be read."""


def default_key_source(config: Config) -> str:
    """Where the key lives for a target: a file under the state folder locally, Secret Manager on gcp."""
    if config.is_local:
        return f"file:{config.state_dir / 'secrets' / 'pii.key'}"
    return f"projects/{config.project}/secrets/gcpipe-pii-key/versions/latest"


def load_key(source: str, make: bool = False) -> bytes:
    """The HMAC key: $GCPIPE_PII_KEY, else the secret ``source`` points at (gcpipe.core.secrets references; a
    plain path is a file). ``make`` (the local target only): a key file that does not exist yet is made,
    for its owner only. Elsewhere a missing key is an error: a key made on the fly would differ between
    machines and runs, and so would the hashes."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    reference = source if source.startswith(("file:", "env:", "projects/")) else f"file:{source}"
    if make:
        ensure_local_secret(reference)
    try:
        return read_secret(reference).encode()
    except SecretError as err:
        raise PiiError(f"cannot read the PII key: {err}") from None


@dataclass(frozen=True)
class PiiPolicy:
    """Columns and their method, and where the key lives; the key itself is read where it is used."""

    methods: dict[str, str]
    key_source: str | None = None
    make_key: bool = False  # the local target: make the key file if missing (see load_key)

    @cached_property
    def key(self) -> bytes:
        key = (
            load_key(self.key_source, self.make_key)
            if self.key_source
            else os.environ.get(KEY_ENV, "").encode()
        )
        if not key:
            raise PiiError("--pii hashes columns but no key was found: set GCPIPE_PII_KEY or --pii_key.")
        return key

    def __getstate__(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if name != "key"}  # never pickled

    @classmethod
    def parse(
        cls, spec: str | None, schema: Schema, key_source: str | None, make_key: bool = False
    ) -> PiiPolicy:
        methods = {}
        for item in filter(None, (part.strip() for part in (spec or "").split(","))):
            column, _, method = item.partition(":")
            method = method or "hash"
            field = schema.field(column)
            if method not in METHODS:
                raise PiiError(f"--pii {item}: the method must be one of {', '.join(METHODS)}.")
            if method in ("hash", "mask") and field.type != "STRING":
                raise PiiError(
                    f"--pii {item}: {column} is {field.type}; only STRING columns can be {method}ed."
                )
            if method == "redact" and field.required:
                raise PiiError(f"--pii {item}: {column} is REQUIRED, so it cannot be redacted to NULL.")
            methods[column] = method
        policy = cls(methods, key_source, make_key)
        if "hash" in methods.values():
            policy.key  # noqa: B018 (read it now: a missing key fails here, not on a worker)
        return policy

    def __bool__(self) -> bool:
        return bool(self.methods)

    def value(self, column: str, text: str | None) -> str | None:
        """One cell's protected form."""
        if text is None or text == "":
            return text
        method = self.methods[column]
        if method == "hash":
            return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
        if method == "mask":
            return "#" * max(len(text) - 4, 0) + text[-4:] if len(text) > 4 else "#" * len(text)
        return None

    def apply(self, table: pa.Table) -> pa.Table:
        """The table with every PII column protected (per distinct value)."""
        for column, method in self.methods.items():
            index = table.schema.get_field_index(column)
            if method == "redact":
                values = pa.nulls(table.num_rows, table.schema.field(index).type)
            else:
                encoded = pc.dictionary_encode(table[column]).combine_chunks()
                protected = pa.array(
                    [self.value(column, v) for v in encoded.dictionary.to_pylist()], pa.string()
                )
                values = pc.take(protected, encoded.indices)
            table = table.set_column(index, table.schema.field(index), values)
        return table

    def raw(self, text: str, columns: tuple[str, ...]) -> str | None:
        """A rejected record with its PII cells protected; None when the cells cannot be told apart."""
        if not text:
            return text
        cells, problem = record_cells(text)
        if problem or len(cells) != len(columns):
            return None
        cells = [
            self.value(c, v) or "" if c in self.methods else v for c, v in zip(columns, cells, strict=True)
        ]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(cells)
        return out.getvalue()

    def reason(self, reason: str) -> str:
        """A rejection reason without the value of a PII column (reasons quote the bad value)."""
        column = reason.split(":", 1)[0]
        if column in self.methods and ":" in reason:
            return re.sub(r"'.*' is", "the value is", reason, count=1, flags=re.DOTALL)
        return reason
