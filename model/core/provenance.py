"""Where a data file came from, kept in a sidecar next to it.

A CSV cannot carry metadata, yet everything downstream must say when a model
was trained on generated data. The generator writes `<file>.provenance.json`
beside its output; training reads it to label the model card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".provenance.json"


def sidecar_path(data_path: str | Path) -> Path:
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + SIDECAR_SUFFIX)


def write_provenance(data_path: str | Path, info: dict[str, Any]) -> Path:
    path = sidecar_path(data_path)
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return path


def read_provenance(data_path: str | Path) -> dict[str, Any] | None:
    path = sidecar_path(data_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_synthetic(data_path: str | Path) -> bool:
    info = read_provenance(data_path)
    return bool(info and info.get("synthetic"))
