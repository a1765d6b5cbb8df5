"""Files and folders a user names as input: whatever is wrong with one is one sentence, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from gcpipe.core.errors import GcpipeError


class InputError(GcpipeError):
    """An input file or folder that is missing, of the wrong kind, or cannot be read."""


def input_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a file this process may read; else the sentence that says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist.")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder: name a file.")
    if not os.access(path, os.R_OK):
        raise InputError(
            f"cannot read {what} {path}: permission denied (`chmod u+r` it, or run as its owner)."
        )
    return path


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of the input file ``path``."""
    path = input_file(path, what)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = err.object[: err.start].count(b"\n") + 1
        raise InputError(
            f"{what} {path} is not UTF-8 text: byte 0x{err.object[err.start]:02x} on line {line}."
        ) from None
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror}.") from None


def input_folder(path: str | Path, what: str = "folder") -> Path:
    """``path`` if it is a folder this process may list and read; else the sentence that says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist.")
    if not path.is_dir():
        raise InputError(f"{what} {path} is a file: name the folder that holds the files.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(
            f"cannot read {what} {path}: permission denied (`chmod u+rx` it, or run as its owner)."
        )
    return path
