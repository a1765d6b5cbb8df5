"""Fetch the pinned jars of gcpipe.core.jars from Maven Central into .jars/, checking each SHA-256.

Part of ``make setup``: a jar already there with the right checksum is kept (seconds when all are there);
a download whose checksum differs is refused, and nothing is left half-written.
"""

import hashlib
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gcpipe.core.jars import JARS, JARS_DIR


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch(jar) -> str:
    if jar.path.is_file() and sha256(jar.path) == jar.sha256:
        return f"{jar.file_name}: present"
    JARS_DIR.mkdir(exist_ok=True)
    partial = jar.path.with_suffix(".part")
    try:
        # the URL is Maven Central's https address of a pinned jar (S310 warns of file: URLs)
        with urllib.request.urlopen(jar.url, timeout=120) as response, partial.open("wb") as out:  # noqa: S310
            while block := response.read(1 << 20):
                out.write(block)
    except OSError as err:
        partial.unlink(missing_ok=True)
        sys.exit(f"could not fetch {jar.url} ({err}): Maven Central must be reachable for `make setup`.")
    if (got := sha256(partial)) != jar.sha256:
        partial.unlink()
        sys.exit(f"{jar.url} has SHA-256 {got}, not the pinned {jar.sha256}: refusing it.")
    partial.replace(jar.path)
    return f"{jar.file_name}: fetched"


if __name__ == "__main__":
    print("jars: " + ", ".join(fetch(jar) for jar in JARS))
