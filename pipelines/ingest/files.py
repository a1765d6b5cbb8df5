"""CSV files on any file system Beam knows (a folder, gs://): matched, read in blocks of whole records."""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from contextlib import contextmanager

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.ingest import IngestError
from pipelines.ingest.records import BOM, split_records


@contextmanager
def _open(path: str):
    """``path`` on any file system, unzipped if its name ends in .gz. Python's gzip, not Beam's: a
    truncated or corrupt file raises instead of ending early."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if not path.endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(fileobj=raw) as unzipped:
            yield unzipped


def read_blocks(path: str, block_bytes: int):
    """(records, is the first block) for each block of ``path``: any file system, gzip by its name."""
    from google.api_core.exceptions import GoogleAPIError

    try:
        yield from _blocks(path, block_bytes)
    except GoogleAPIError as err:  # Cloud Storage: the object went away mid-read, or the service kept failing
        raise IngestError(f"{path} could not be read from Cloud Storage: {err.message}.") from None


def _blocks(path: str, block_bytes: int):
    with _open(path) as stream:
        carry, line, first = b"", 1, True
        while True:
            try:
                block = stream.read(block_bytes)
            except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
                raise IngestError(f"{path} cannot be read whole after line {line}: {err}.") from None
            data = carry + block
            if first and data.startswith(BOM):
                data = data[len(BOM) :]
            records = split_records(data, line, final=not block)
            if len(records) or not block:
                yield records, first
                first = False
            carry, line = data[records.consumed :], line + records.newlines
            if not block:
                return


def first_record(path: str) -> str | None:
    """The first record of a file (its header, if it has one), or None for an empty file."""
    for records, _ in read_blocks(path, 1 << 20):
        return records.text(0) if len(records) else None
    return None


def match_inputs(pattern: str) -> list[str]:
    """Every file the pattern names (a path, a glob, gs://...), or one sentence saying there are none."""
    if "://" not in pattern:
        pattern = os.path.abspath(pattern)  # dead letters name their source by a path that works anywhere
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as err:  # Beam raises BeamIOError with nested details
        raise IngestError(f"--input {pattern} could not be listed: {err}.") from None
    paths = sorted(m.path for m in matched)
    if not paths:
        raise IngestError(f"--input {pattern} matches no file.")
    return paths


def total_bytes(paths: list[str]) -> int:
    """The files' sizes added up (as stored: compressed for .gz)."""
    return sum(m.size_in_bytes for result in FileSystems.match(paths) for m in result.metadata_list)


def fetch_schema(schema: str) -> str:
    """A schema name or local path as it is; a ``gs://`` schema file copied into a temporary folder first."""
    if "://" not in schema:
        return schema
    local = os.path.join(tempfile.mkdtemp(prefix="csv_ingest_schema_"), os.path.basename(schema))
    try:
        with FileSystems.open(schema) as source, open(local, "wb") as out:
            out.write(source.read())
    except Exception as err:  # Beam's file systems raise several kinds; the user needs the sentence
        raise IngestError(f"--schema {schema} could not be read: {err}.") from None
    return local
