"""Model card: what the model was trained on, how well it does, and where it must not be used."""

from typing import Any

import streamlit as st

from dashboard.ui import charts, page
from dashboard.ui.artifacts import ModelArtifact
from model.core import schema
from model.training.model_card import RACE_STATEMENT, temporal_text

SUBGROUP_COLUMNS = [
    "column",
    "value",
    "count",
    "deaths",
    "expected",
    "oe",
    "oe_low",
    "oe_high",
    "miscalibrated",
    "prevalence",
    "mean_predicted",
    "roc_auc",
]
OE_ENDS = ("", "_low", "_high")


def render() -> None:
    """The page: the card's facts, data, each model, between-month figures, calibration and subgroups."""
    ctx = page.context()
    assert ctx.model is not None  # run_app stopped the page otherwise
    card = ctx.model.card
    _version_line(card)
    _data_section(ctx.model)
    _models_section(card.get("models") or {})
    if card.get("period_validation"):
        _period_section(card["period_validation"])
    _calibration_and_use(ctx.model)
    _subgroup_section(ctx.model)
    _race_section(card.get("race_ethnicity_calibration") or [])
    st.caption(RACE_STATEMENT)


def _num(value: object, fmt: str = ".4f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "n/a"


def _interval(values: object, fmt: str = ".3f") -> str:
    return f"{values[0]:{fmt}} to {values[1]:{fmt}}" if isinstance(values, list) and len(values) == 2 else "n/a"


def _version_line(card: dict[str, Any]) -> None:
    """Version, dates, schema and the period the model describes; one note per update since training."""
    st.markdown(
        f"**Model** `{card.get('model_version', '?')}` · created {card.get('created_utc', '?')} UTC · "
        f"schema `{card.get('schema_version', '?')}` · describes **{card.get('data_period', 'an unstated period')}**"
    )
    for update in card.get("updates") or []:
        st.info(
            f"**Updated {update.get('created_utc')}** ({update.get('kind')}): {update.get('summary')}",
            icon=":material/update:",
        )


def _data_section(model: ModelArtifact) -> None:
    """Real or synthetic, row counts, the source and what was excluded, deaths by month, outcomes dropped."""
    card = model.card
    data = card.get("data") or {}
    st.header("Data and population")
    if data.get("synthetic"):
        st.warning("**SYNTHETIC data.** Generated to resemble CDC case surveillance; metrics describe the generator.")
    else:
        st.success("**Real data**: CDC COVID-19 Case Surveillance Public Use Data.")
    dropped = data.get("rows_dropped") or {}
    d = st.columns(4)
    d[0].metric("Rows read", f"{data.get('rows_read', 0):,}")
    d[1].metric("Rows with a known outcome", f"{data.get('rows_used', 0):,}")
    d[2].metric("Rows dropped (outcome unknown)", f"{sum(dropped.values()):,}")
    d[3].metric("Death rate (test split)", _num(model.prevalence, ".2%"))
    population = card.get("population") or {}
    details = [
        f"- Source `{data.get('source', '?')}` ({data.get('format', '?')}, schema {data.get('schema_variant', '?')}), "
        f"SHA-256 `{data.get('sha256', '?')}`",
        f"- Excluded from the intake population: {population.get('intake_exclusion', 'nothing')} — "
        f"{data.get('known_outcome_outside_intake', 0):,} rows with a known outcome",
    ]
    details += [f"- Dropped, {reason}: {count:,}" for reason, count in dropped.items()]
    st.markdown("\n".join(details))
    charts.show(charts.deaths_by_month(model.table("deaths_by_month")))
    known = model.table("outcome_known")
    st.dataframe(
        known[known["column"] == "age_group"],
        hide_index=True,
        column_config={
            "column": None,
            "value": "age group",
            "share_dropped": st.column_config.NumberColumn("share dropped (outcome unknown)", format="percent"),
        },
    )


def _models_section(models: dict[str, Any]) -> None:
    """One box per model: its test-split figures, or why it was not trained."""
    st.header("The two models")
    for name, model in models.items():
        with st.container(border=True):
            st.markdown(f"**{model.get('label', name)}**")
            if model.get("trained") is False:
                st.markdown(f"Not trained: {model.get('reason')}")
                continue
            _model_metrics(model)


def _model_metrics(model: dict[str, Any]) -> None:
    """ROC-AUC, observed/expected, calibration slope and Brier score with their intervals, and how it was chosen."""
    test_m = model["metrics"]["test"]
    ci, line, oe = (
        test_m.get("intervals_95") or {},
        test_m.get("calibration_line") or {},
        test_m["observed_expected"],
    )
    c = st.columns(4)
    c[0].metric("ROC-AUC", _num(test_m.get("roc_auc"), ".3f"), help=f"95% CI {_interval(ci.get('roc_auc'))}")
    c[0].caption(f"95% CI {_interval(ci.get('roc_auc'))}")
    c[1].metric("Observed / expected deaths", _num(oe.get("oe"), ".3f"))
    c[1].caption(f"95% CI {_num(oe.get('oe_low'), '.3f')} to {_num(oe.get('oe_high'), '.3f')}")
    c[2].metric("Calibration slope", _num(line.get("slope"), ".3f"), help="1 is perfect; below 1, too extreme.")
    c[2].caption(f"intercept {_num(line.get('intercept'), '.3f')} (0 is perfect)")
    c[3].metric("Brier score", _num(test_m.get("brier")))
    c[3].caption(f"95% CI {_interval(ci.get('brier'), '.4f')}")
    st.caption(
        f"Inputs: {', '.join(model['inputs'])}. Chosen **{model['candidate']}** by validation log loss with "
        f"the one-standard-error rule; logistic recalibration; {model['extrapolated_combinations']:,} of "
        f"{model['combinations']:,} combinations extrapolated."
    )


def _period_section(periods: dict) -> None:
    """Leave-one-month-out figures: a forest plot per model and measure, pooled values and which interval is shown."""
    st.subheader("Performance between months (leave one month out)")
    st.caption(
        f"{periods.get('method', '')}; months with at least {periods.get('min_events_per_month', 100)} deaths and "
        f"survivors; {periods.get('pooling', '')}. Intervals the form shows: {periods.get('interval_shown', '')}."
    )
    for name, result in (periods.get("models") or {}).items():
        _period_model(name, result)


def _period_model(name: str, result: dict[str, Any]) -> None:
    """One model's two forest plots (O/E, ROC-AUC) and its pooled values, or why there are none."""
    st.markdown(f"**{schema.MODEL_LABELS.get(name, name)}**")
    if not result.get("performed"):
        st.markdown(f"No pooled values: {result.get('reason', 'too few months')}.")
    cols = st.columns(2)
    for col, measure in zip(cols, ("oe", "roc_auc"), strict=True):
        col.plotly_chart(charts.forest(result, measure), config={"displayModeBar": False}, key=f"{name}-{measure}")
    if result.get("performed"):
        oe, auc = result["pooled"]["observed_expected"], result["pooled"]["roc_auc"]
        st.caption(
            f"Pooled O/E {oe['mu']:.2f} (95% prediction interval for a new month {oe['pi_low']:.2f}-"
            f"{oe['pi_high']:.2f}); ROC-AUC {auc['mu']:.3f} ({auc['pi_low']:.3f}-{auc['pi_high']:.3f}); "
            f"each risk's interval widened by a between-month SD of {result['interval_tau_log']:.3f} on the logit."
        )


def _calibration_and_use(model: ModelArtifact) -> None:
    """The calibration chart beside temporal validation, updating plan, intended use and limitations."""
    card = model.card
    left, right = st.columns([3, 2])
    with left:
        charts.show(charts.calibration(model.table("calibration"), model.table("calibration_smooth")))
    with right:
        temporal = card.get("temporal_validation") or {}
        st.markdown("**Temporal validation**")
        st.markdown(temporal_text(temporal))
        st.markdown("**Updating plan**")
        st.markdown(str(card.get("updating_plan", "Not stated.")))
        st.markdown("**Intended use**")
        st.markdown(str(card.get("intended_use", "Not stated.")))
        st.markdown("**Limitations**")
        limits = card.get("limitations") or []
        st.markdown("\n".join(f"- {item}" for item in limits) if isinstance(limits, list) else str(limits))


def _subgroup_section(model: ModelArtifact) -> None:
    """Observed/expected per subgroup of the race-blind intake model on the test split."""
    st.header("Observed / expected per subgroup (intake model, test split)")
    subgroups = model.table("subgroups").copy()
    labels = {name: schema.FEATURES_BY_NAME[name].label for name in schema.SUBGROUP_COLUMNS}
    subgroups["column"] = subgroups["column"].map(lambda c: labels.get(c, c))
    st.dataframe(
        subgroups[SUBGROUP_COLUMNS],
        hide_index=True,
        column_config={
            "column": "group",
            "count": st.column_config.NumberColumn("patients", format="localized"),
            "deaths": st.column_config.NumberColumn("deaths", format="localized"),
            "expected": st.column_config.NumberColumn("expected deaths", format="%.1f"),
            "oe": st.column_config.NumberColumn("O/E", format="%.2f"),
            "oe_low": st.column_config.NumberColumn("O/E low", format="%.2f"),
            "oe_high": st.column_config.NumberColumn("O/E high", format="%.2f"),
            "miscalibrated": st.column_config.CheckboxColumn("interval excludes 1"),
            "prevalence": st.column_config.NumberColumn("death rate", format="percent"),
            "mean_predicted": st.column_config.NumberColumn("mean predicted", format="percent"),
            "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        },
    )
    st.caption("The table above is the race-blind intake model's (race/ethnicity not given).")


def _race_section(race_rows: list[dict[str, Any]]) -> None:
    """O/E per race/ethnicity of the race-blind and the race-aware model (absent from older cards)."""
    if not (race_rows and "race_aware_oe" in race_rows[0]):
        return
    st.subheader("Observed / expected per race/ethnicity, race-blind and race-aware")
    st.dataframe(
        race_rows,
        hide_index=True,
        column_order=["value", "count", "deaths", *(f"race_{k}_oe{e}" for k in ("blind", "aware") for e in OE_ENDS)],
        column_config={
            "value": "race/ethnicity",
            "count": st.column_config.NumberColumn("patients", format="localized"),
            "deaths": st.column_config.NumberColumn("deaths", format="localized"),
            **{
                f"race_{kind}_oe{end}": st.column_config.NumberColumn(
                    f"O/E {kind}{end.replace('_', ' ')}", format="%.2f"
                )
                for kind in ("blind", "aware")
                for end in OE_ENDS
            },
        },
    )
