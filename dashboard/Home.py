"""Entry point: `streamlit run dashboard/Home.py` (from the repo root)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])  # `streamlit run` puts only the script's folder on sys.path
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.ui import page, theme  # noqa: E402
from model import schema  # noqa: E402

ctx = page.setup_page(
    theme.APP_NAME,
    "Risk of death for reported COVID-19 cases, from the lab intake form to ICU planning.",
    needs_model=False,
)

st.markdown(
    "This tool estimates, for one reported COVID-19 case, the **probability that the case ends in death**, "
    "from the few attributes a lab intake form holds. A model trained on CDC case-surveillance records is "
    "served on an Azure ML online endpoint and scores each patient live."
)

PAGES = (
    (
        "pages/1_Patient_risk.py",
        "Patient risk",
        ":material/person_search:",
        "Lab clerks: type a patient in, get the risk and its band.",
    ),
    (
        "pages/2_Threshold_explorer.py",
        "Threshold explorer",
        ":material/tune:",
        "Analysts: choose the risk that flags a patient; ROC, PR and decision curves.",
    ),
    (
        "pages/3_ICU_saturation.py",
        "ICU saturation",
        ":material/bed:",
        "Planners: ICU beds the flagged patients need, and when the ICU fills up.",
    ),
    (
        "pages/4_Model_card.py",
        "Model card",
        ":material/description:",
        "Everyone: data, metrics, calibration, subgroups and limits.",
    ),
)
columns = st.columns(len(PAGES))
for column, (path, label, icon, blurb) in zip(columns, PAGES, strict=True):
    with column, st.container(border=True):
        st.page_link(path, label=f"**{label}**", icon=icon)
        st.caption(blurb)

st.subheader("How to read a risk")
bands = [f"**{name}** below {upper:.0%}" for upper, name in schema.RISK_BANDS[:-1]]
bands.append(f"**{schema.RISK_BANDS[-1][1]}** from {schema.RISK_BANDS[-2][0]:.0%}")
base = f" Among all cases with a known outcome the death rate is {ctx.model.prevalence:.1%}." if ctx.model else ""
st.markdown(
    "- The number is a **calibrated probability**: of 100 cases with the same inputs, about that many died in "
    f"the training data.{base}\n"
    f"- Risk bands: {'; '.join(bands)}.\n"
    "- A patient is **flagged** when the risk reaches the operating threshold chosen on the Threshold explorer.\n"
    "- The model ranks patients and sizes groups; it is **not a diagnosis** and does not replace clinical "
    "judgement. Enter *Unknown* for anything the form does not say."
)
