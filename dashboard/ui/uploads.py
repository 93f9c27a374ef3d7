"""Uploaded files as real files on disk, for the readers that stream from a path, and the upload cap."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

# The largest upload, in MB: also `server.maxUploadSize` in .streamlit/config.toml (a test keeps them equal).
# Streamlit holds every upload in memory, even before a page sees it, so this is what one upload costs the
# dashboard. 64 MB holds a million CDC rows as .csv.gz or Parquet (~110 bytes per row unpacked; the bundled
# 500,000-row extract is 1.6 MB gzipped) or about 500,000 as plain CSV; larger files: the command-line tools.
MAX_UPLOAD_MB = 64


class Upload(Protocol):
    name: str

    def seek(self, offset: int) -> int: ...

    def read(self, size: int = -1) -> bytes: ...


@contextmanager
def upload_as_file(upload: Upload) -> Iterator[Path]:
    """Write the upload to a private temp file, keeping its extension (the loader sniffs by it), then delete it."""
    suffix = "".join(Path(upload.name).suffixes[-2:]) or ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        upload.seek(0)
        with path.open("wb") as handle:  # copied in pieces: getvalue() would hold a second copy in memory
            shutil.copyfileobj(upload, handle, 1 << 20)
        yield path


def user_facing(message: object, path: Path, name: str) -> str:
    """An error message with the temp path replaced by the name the user uploaded."""
    return str(message).replace(str(path), name)
