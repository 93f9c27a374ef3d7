"""Model card: what the model was trained on, how well it does, and where it must not be used."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])  # `streamlit run` puts only the script's folder on sys.path
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.ui import charts, page  # noqa: E402
from model import schema  # noqa: E402

ctx = page.setup_page(
    "Model card",
    "What the model learned from, how well it ranks and calibrates, and its limits.",
    icon=":material/description:",
)
assert ctx.model is not None  # setup_page stopped the page otherwise
card = ctx.model.card
data = card.get("data") or {}
test = (card.get("metrics") or {}).get("test") or {}


def _num(value: object, fmt: str = ".4f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "n/a"


st.markdown(
    f"**Model** `{card.get('model_version', '?')}` · created {card.get('created_utc', '?')} UTC · "
    f"schema `{card.get('schema_version', '?')}` · selected **{(card.get('selection') or {}).get('chosen', '?')}**, "
    f"calibration: {card.get('calibration_method', '?')}"
)

st.subheader("Data")
if data.get("synthetic"):
    st.warning("**SYNTHETIC data.** Generated to resemble CDC case surveillance; metrics describe the generator.")
else:
    st.success("**Real data**: CDC COVID-19 Case Surveillance Public Use Data.")
d = st.columns(4)
d[0].metric("Rows read", f"{data.get('rows_read', 0):,}")
d[1].metric("Rows used (known outcome)", f"{data.get('rows_used', 0):,}")
dropped = data.get("rows_dropped") or {}
d[2].metric("Rows dropped", f"{sum(dropped.values()):,}")
d[3].metric("Death rate (test split)", _num(ctx.model.prevalence, ".2%"))
details = [
    f"- Source `{data.get('source', '?')}` ({data.get('format', '?')}, schema {data.get('schema_variant', '?')})",
    f"- SHA-256 `{data.get('sha256', '?')}`",
]
details += [f"- Dropped, {reason}: {count:,}" for reason, count in dropped.items()]
st.markdown("\n".join(details))
splits = card.get("splits") or {}
if splits:
    st.dataframe(
        [{"split": name, **values} for name, values in splits.items()],
        hide_index=True,
        column_config={"prevalence": st.column_config.NumberColumn("death rate", format="percent")},
    )

st.subheader("Test metrics (held out, calibrated)")
m = st.columns(5)
m[0].metric("ROC-AUC", _num(test.get("roc_auc")))
m[1].metric("PR-AUC", _num(test.get("pr_auc")), help="A random ranking scores the death rate.")
m[2].metric("Brier score", _num(test.get("brier"), ".5f"))
m[3].metric("Log loss", _num(test.get("log_loss")))
m[4].metric("Calibration error (ECE)", _num(test.get("expected_calibration_error"), ".5f"))

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(charts.calibration(ctx.model.table("calibration")), config={"displayModeBar": False})
with right:
    st.markdown("**Intended use**")
    st.markdown(str(card.get("intended_use", "Not stated.")))
    st.markdown("**Limitations**")
    limits = card.get("limitations") or []
    st.markdown("\n".join(f"- {item}" for item in limits) if isinstance(limits, list) else str(limits))

st.subheader("Per subgroup (test split)")
subgroups = ctx.model.table("subgroups").copy()
labels = {name: schema.FEATURES_BY_NAME[name].label for name in schema.SUBGROUP_COLUMNS}
subgroups["column"] = subgroups["column"].map(lambda c: labels.get(c, c))
st.dataframe(
    subgroups,
    hide_index=True,
    column_config={
        "column": "group",
        "count": st.column_config.NumberColumn("patients", format="localized"),
        "deaths": st.column_config.NumberColumn("deaths", format="localized"),
        "prevalence": st.column_config.NumberColumn("death rate", format="percent"),
        "mean_predicted": st.column_config.NumberColumn("mean predicted", format="percent"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "pr_auc": st.column_config.NumberColumn("PR-AUC", format="%.3f"),
        "brier": st.column_config.NumberColumn("Brier", format="%.5f"),
    },
)
st.caption("Race and ethnicity is reported here but is not a model input (see limitations).")
