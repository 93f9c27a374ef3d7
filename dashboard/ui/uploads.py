"""Uploaded files as real files on disk, for the readers that stream from a path."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


class Upload(Protocol):
    name: str

    def getvalue(self) -> bytes: ...


@contextmanager
def upload_as_file(upload: Upload) -> Iterator[Path]:
    """Write the upload to a private temp file, keeping its extension (the loader sniffs by it), then delete it."""
    suffix = "".join(Path(upload.name).suffixes[-2:]) or ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(upload.getvalue())
        yield path


def user_facing(message: object, path: Path, name: str) -> str:
    """An error message with the temp path replaced by the name the user uploaded."""
    return str(message).replace(str(path), name)
