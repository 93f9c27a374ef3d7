"""House style: palette, risk-band colours, CSS, header and banners."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.ui import text
from model.core import schema

ASSETS = Path(__file__).resolve().parents[2] / "assets"
APP_NAME = "COVID-19 Risk Desk"
FAVICON = ASSETS / "favicon.png"

PRIMARY = "#0F6E7A"
INK = "#13343B"
MUTED = "#4A6670"
GRID = "#D5E3E7"
ACCENT = "#7A4F9E"  # second series (e.g. PR curve, age-group marker)
CAPACITY = "#B03A2E"

# One colour per schema.RISK_BANDS entry, in band order (low → very high).
_BAND_PALETTE = ("#3A9D7A", "#D9A93B", "#E07B39", "#B03A2E")
if len(_BAND_PALETTE) != len(schema.RISK_BANDS):  # pragma: no cover - guards a schema change
    raise RuntimeError("theme._BAND_PALETTE needs one colour per schema.RISK_BANDS entry")
BAND_COLOURS: dict[str, str] = {
    name: colour for (_, name), colour in zip(schema.RISK_BANDS, _BAND_PALETTE, strict=True)
}


def band_colour(band: str) -> str:
    return BAND_COLOURS.get(band, MUTED)


def apply_theme() -> None:
    """CSS and logo; colours themselves live in .streamlit/config.toml."""
    css = ASSETS / "style.css"
    if css.is_file():
        st.html(css)
    logo = ASSETS / "logo.svg"
    if logo.is_file():
        st.logo(str(logo), size="large")


def header(title: str, subtitle: str) -> None:
    st.title(title)
    st.html(f'<div class="risk-subtitle">{subtitle}</div>')


def format_risk(probability: float) -> str:
    """A risk as people read it: never "0.0%"; two significant digits below 1% (e.g. "0.02%")."""
    if probability < 0.0001:
        return "< 0.01%"
    if probability < 0.01:
        return f"{probability * 100:.2g}%"
    return f"{probability:.1%}"


def format_interval(interval: tuple[float, float] | list[float]) -> str:
    return f"95% CI {format_risk(interval[0])} to {format_risk(interval[1])}"


def data_banner(card: dict) -> None:
    """Shown on every page: which patients and period the model describes (and a warning if synthetic)."""
    data = card.get("data") or {}
    period = card.get("data_period")
    if period:
        st.caption(f"Model {text.md_code(card.get('model_version', '?'))} describes **{text.md(period, 500)}**.")
    if data.get("synthetic"):
        st.warning(
            f"**Synthetic-data model.** Version {text.md_code(card.get('model_version', '?'))} was trained on "
            f"generated data ({text.md_code(data.get('source', '?'))}), not on real patients: its risks and metrics "
            "describe the generator. Do not use them for care or planning decisions.",
            icon=":material/science:",
        )


def band_badge(band: str) -> str:
    """HTML pill for a risk band in its colour."""
    return f'<span class="risk-badge" style="background:{band_colour(band)}">{text.html_text(band, 40)}</span>'
