"""The one `default=` for `json.dumps` of what the model writes (card, monitor report)."""

from __future__ import annotations

from typing import Any


def json_default(value: Any) -> Any:
    """A value `json` cannot write, made writable: numpy scalars become Python numbers, anything else text.

    Text rather than an error: paths and timestamps in a card or report read fine as strings.
    """
    if hasattr(value, "item"):
        return value.item()
    return str(value)
