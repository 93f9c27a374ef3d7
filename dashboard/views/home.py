"""Home: what the tool does, one card per page (from `navigation.PAGES`), and how to read a risk."""

import streamlit as st

from dashboard.ui import navigation, page
from model.core import schema

CARDS_PER_ROW = 3


def render() -> None:
    """The page: what the tool does, a card per page, and how to read a risk."""
    ctx = page.context()
    st.markdown(
        "This tool estimates, for one reported COVID-19 case, the **probability that the case ends in death**, "
        "from the few attributes a lab intake form holds. A model trained on CDC case-surveillance records is "
        "served on an Azure ML online endpoint and scores each patient live."
    )
    _page_cards()
    _how_to_read(ctx.model.prevalence if ctx.model else None)


def _page_cards() -> None:
    """One card per page but Home, three to a row: a link and who uses the page for what."""
    others = [spec for spec in navigation.PAGES if spec is not navigation.HOME]
    for row in range(0, len(others), CARDS_PER_ROW):
        for column, spec in zip(st.columns(CARDS_PER_ROW), others[row : row + CARDS_PER_ROW], strict=False):
            with column, st.container(border=True):
                st.page_link(navigation.streamlit_page(spec), label=f"**{spec.title}**", icon=spec.icon)
                st.caption(spec.audience)


def _how_to_read(prevalence: float | None) -> None:
    """Risk bands, the base rate (when a model is loaded) and what the number is and is not."""
    st.header("How to read a risk")
    bands = [f"**{name}** below {upper:.0%}" for upper, name in schema.RISK_BANDS[:-1]]
    bands.append(f"**{schema.RISK_BANDS[-1][1]}** from {schema.RISK_BANDS[-2][0]:.0%}")
    base = "" if prevalence is None else f" Among all cases with a known outcome the death rate is {prevalence:.1%}."
    st.markdown(
        "- The number is a **calibrated probability**: of 100 cases with the same inputs, about that many died in "
        f"the training data.{base}\n"
        f"- Risk bands: {'; '.join(bands)}.\n"
        "- A patient is **flagged** when the risk reaches the operating threshold chosen on the Threshold explorer.\n"
        "- The model ranks patients and sizes groups; it is **not a diagnosis** and does not replace clinical "
        "judgement. Choose *Not known* for any answer you do not know (only age is needed): the risk is then that "
        "of all patients like this one, whatever their answer. Race/ethnicity is optional (*Not given* by default).\n"
        "- The risk is shown as a **range**: the higher number among cases whose outcome was recorded, the lower "
        "one counting every case whose outcome was never recorded as a survival."
    )
