"""Values that outlive a page: operating threshold, ICU assumptions, scored patients, endpoint status.

Streamlit forgets a widget's key when the page holding the widget is not shown,
so shared values live under plain (non-widget) keys. A page that edits one binds
a widget with `seed_widget(widget_key, value)` before drawing the widget and
writes the widget's return value back with the matching setter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard.ui.icu import IcuAssumptions
from model.core import schema

THRESHOLD_KEY = "shared.threshold"
ICU_KEY = "shared.icu_assumptions"
SCORED_KEY = "shared.scored_patients"
ENDPOINT_STATUS_KEY = "shared.endpoint_status"


THRESHOLD_PARAM = "threshold"  # ?threshold=0.0807 in the URL: a link opens the same operating point


def threshold_from_url() -> str | None:
    """Adopt the URL's threshold for a session that has none yet; a message when the URL's value is unusable."""
    raw = st.query_params.get(THRESHOLD_PARAM)
    if raw is None or THRESHOLD_KEY in st.session_state:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        return (
            f"The link's threshold {raw[:20]!r} is not a number between 0 and 1; using "
            f"{schema.DEFAULT_THRESHOLD:.4f}. Set it on the Threshold explorer, then copy the address again."
        )
    set_threshold(value)
    return None


def get_threshold() -> float:
    """The operating threshold (flag = probability ≥ threshold) chosen anywhere in the app."""
    value = st.session_state.get(THRESHOLD_KEY)
    if not isinstance(value, float) or not math.isfinite(value):
        value = schema.DEFAULT_THRESHOLD
        st.session_state[THRESHOLD_KEY] = value
    return value


# One operating threshold, one value on every page: stored on the slider's grid (floored, so a
# threshold chosen elsewhere flags at least the patients it flagged there) and shown with 4 decimals.
THRESHOLD_STEP = 0.0001


def set_threshold(value: float, *, round_up: bool = False) -> None:
    """Store the operating threshold on the grid. Down (default) keeps a recall reached at `value`;
    up (`round_up`) keeps a capacity that `value` fits, since it flags no one more."""
    steps = min(max(float(value), 0.0), 1.0) / THRESHOLD_STEP
    snapped = (math.ceil(steps - 1e-9) if round_up else math.floor(steps + 1e-9)) * THRESHOLD_STEP
    st.session_state[THRESHOLD_KEY] = round(min(snapped, 1.0), 4)
    sync_url()  # the address to share opens this view at once, not only after the run


def get_icu_assumptions() -> IcuAssumptions:
    value = st.session_state.get(ICU_KEY)
    if not isinstance(value, IcuAssumptions):
        value = IcuAssumptions()
        st.session_state[ICU_KEY] = value
    return value


def set_icu_assumptions(value: IcuAssumptions) -> None:
    st.session_state[ICU_KEY] = value
    sync_url()


ICU_PARAM_PREFIX = "icu."  # ?icu.icu_beds=60&icu.growth=doubling: a link opens the same ICU scenario


def icu_params(value: IcuAssumptions) -> dict[str, str]:
    """The planner's scenario as URL parameters: only what differs from the defaults, so links stay short."""
    defaults = IcuAssumptions()
    params = {}
    for field in dataclasses.fields(IcuAssumptions):
        mine = getattr(value, field.name)
        if mine != getattr(defaults, field.name):
            params[ICU_PARAM_PREFIX + field.name] = str(mine).lower() if isinstance(mine, bool) else str(mine)
    return params


def icu_from_url() -> str | None:
    """Adopt the URL's ICU scenario for a session that has none yet; a message when the URL's values are unusable."""
    given = {k.removeprefix(ICU_PARAM_PREFIX): v for k, v in st.query_params.items() if k.startswith(ICU_PARAM_PREFIX)}
    if not given or ICU_KEY in st.session_state:
        return None
    types = {field.name: type(getattr(IcuAssumptions(), field.name)) for field in dataclasses.fields(IcuAssumptions)}
    values: dict[str, Any] = {}
    problems = [f"{ICU_PARAM_PREFIX}{name} is not an ICU input" for name in given if name not in types]
    for name, raw in given.items():
        kind = types.get(name)
        if kind is None:
            continue  # named in `problems` above
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false"):
                    raise ValueError(raw)
                values[name] = raw.lower() == "true"
            else:
                values[name] = kind(raw)
        except ValueError:
            problems.append(f"{ICU_PARAM_PREFIX}{name}={raw[:20]!r} is not a {kind.__name__}")
    if not problems:
        try:
            set_icu_assumptions(IcuAssumptions(**values))
            return None
        except ValueError as exc:  # CapacityInputError says which input is out of range
            problems.append(str(exc))
    return (
        f"The link's ICU scenario cannot be used ({'; '.join(problems)}); using the defaults. "
        "Set the inputs on the ICU saturation page, then copy the address again."
    )


def seed_widget(widget_key: str, value: Any) -> None:
    """Give a widget its shared value when Streamlit has dropped (or never had) its key."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value


def scored_patients() -> list[dict[str, Any]]:
    """Patients scored in this browser session, oldest first (one dict per patient)."""
    return st.session_state.setdefault(SCORED_KEY, [])


def add_scored_patient(row: dict[str, Any]) -> None:
    scored_patients().append(row)


def endpoint_status() -> dict[str, Any]:
    """Last known endpoint facts for the sidebar: model_version, latency_ms, ok, detail."""
    return st.session_state.setdefault(ENDPOINT_STATUS_KEY, {})


def record_endpoint_status(**facts: Any) -> None:
    endpoint_status().update(facts)


# --- the address carries the view ---------------------------------------------------------------------------
# Streamlit empties the query string when the menu switches pages, so a link copied after a switch lost the
# threshold (issue 21). Every run therefore writes the shared state back into the URL from this registry:
# one entry per shared value, so a page's own keys (e.g. the ICU scenario's `icu.*`) need no code of their own.


@dataclasses.dataclass(frozen=True)
class UrlBinding:
    """One shared session value carried in the address: how it becomes parameters, and which parameters it owns."""

    state_key: str
    to_params: Callable[[Any], dict[str, str]]  # the value's parameters; {} when there is nothing to carry
    owns: Callable[[str], bool]  # parameters of this binding the value no longer needs are removed

    def wanted(self) -> dict[str, str] | None:
        """The parameters for the value in this session (None when the session has no value, or an unusable one)."""
        if self.state_key not in st.session_state:
            return None
        try:
            return self.to_params(st.session_state[self.state_key])
        except (TypeError, ValueError, AttributeError):  # a stale or foreign value: leave the URL alone
            return None


URL_BINDINGS: dict[str, UrlBinding] = {}


def bind_to_url(state_key: str, to_params: Callable[[Any], dict[str, str]], owns: Callable[[str], bool]) -> None:
    """Carry `st.session_state[state_key]` in the address on every page (registering again replaces)."""
    URL_BINDINGS[state_key] = UrlBinding(state_key, to_params, owns)


def sync_url() -> None:
    """Write every bound value into `st.query_params` (called on every run and whenever a shared value changes).

    Only parameters that differ are written, so an unchanged view sends nothing to the browser.
    """
    for binding in URL_BINDINGS.values():
        wanted = binding.wanted()
        if wanted is None:
            continue
        for stale in [name for name in st.query_params if binding.owns(name) and name not in wanted]:
            del st.query_params[stale]
        for name, value in wanted.items():
            if st.query_params.get(name) != value:
                st.query_params[name] = value


bind_to_url(THRESHOLD_KEY, lambda value: {THRESHOLD_PARAM: f"{float(value):.4f}"}, lambda name: name == THRESHOLD_PARAM)
bind_to_url(ICU_KEY, icu_params, lambda name: name.startswith(ICU_PARAM_PREFIX))
