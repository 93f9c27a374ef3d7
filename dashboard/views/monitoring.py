"""Monitoring: has the case mix drifted from training, and does the model still perform?"""

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.ui import azure_collected, charts, page, settings, text
from dashboard.ui.artifacts import ModelArtifact
from dashboard.ui.uploads import MAX_UPLOAD_MB, upload_as_file, user_facing
from model.core import artifact, schema
from model.data.loader import DataError
from model.monitoring import monitor
from model.serving import lookup
from model.serving.datacollect import DEFAULT_DIR, ENV_DIR

ROOTS_ENV = "RISK_MONITOR_ROOTS"  # more folders (os.pathsep-separated) whose collected records may be read here
REPORT_KEY = "monitor.report"
SOURCE_LOG = "Records collected by the endpoint"
SOURCE_FILE = "Upload a data file"
TRAFFIC_LABELS = {monitor.ALL_TRAFFIC: "All", schema.LIVE: "Patients typed in", schema.BATCH: "Batch-scored files"}
Run = Callable[..., dict[str, Any]]  # (current: Path, label: str[, traffic: str]) -> report: `_run` with the model
VERDICT_ICONS = {  # the verdicts that call for action: the word shown and its icon
    monitor.VERDICT_RETRAIN: ("retrain", ":material/model_training:"),
    monitor.VERDICT_RECALIBRATE: ("recalibrate", ":material/tune:"),
    monitor.VERDICT_DRIFT: ("drift", ":material/query_stats:"),
}


@st.cache_resource(show_spinner="Loading the model's risk table…", max_entries=4)
def _risk(model_dir: str, stamp: int) -> lookup.RiskLookup:
    # The monitor needs the model's probability for each input combination (8.4k values), not raw data.
    return monitor.load_model(model_dir)


class FolderRefused(Exception):
    """The typed folder is outside the folders this page may read."""


def _allowed_roots() -> list[Path]:
    """Folders the page may read: the collected-data folder and any listed in RISK_MONITOR_ROOTS."""
    roots = [os.environ.get(ENV_DIR) or str(settings.REPO_ROOT / DEFAULT_DIR)]
    roots += [r for r in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if r.strip()]
    return [Path(r.strip()).expanduser().resolve() for r in roots]


def _readable_folder(text: str) -> Path:
    """The typed folder if it (and every collected file in it, links resolved) lies under an allowed root.

    Anything else is refused before a byte is read: the box must not open arbitrary server files.
    """
    roots = _allowed_roots()
    folder = Path(text.strip() or ".").expanduser().resolve()

    def allowed(path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in roots)

    where = ", ".join(str(r) for r in roots)
    if not allowed(folder):
        raise FolderRefused(
            f"only the collected-data folder can be read here ({where}) and folders inside it; set "
            f"{ENV_DIR} or {ROOTS_ENV} on the dashboard's server to allow another, or upload a file instead."
        )
    if not folder.is_dir():
        raise FolderRefused(f"{folder} is not a folder; enter the endpoint's collected-data folder.")
    if any(not allowed(p.resolve()) for p in folder.glob(monitor.LOG_PATTERN)):
        raise FolderRefused(f"{folder} holds links to files outside {where}; they are not read.")
    return folder


def _run(model: ModelArtifact, current: Path, label: str, traffic: str = monitor.ALL_TRAFFIC) -> dict[str, Any]:
    """The monitor's report on `current` (a folder of collected records or a data file) against the model."""
    model_dir = model.directory
    risk = _risk(str(model_dir), (model_dir / artifact.CARD_JSON).stat().st_mtime_ns)
    agg = monitor.aggregate(current, risk, traffic)
    agg.source = label
    return monitor.build_report(model_dir, agg, risk)


def render() -> None:
    """The page: choose the current data, then the verdict, drift per input, predicted risk and performance."""
    ctx = page.context()
    assert ctx.model is not None  # run_app stopped the page otherwise
    _source_section(partial(_run, ctx.model))
    report = st.session_state.get(REPORT_KEY)
    if report is None:
        st.info("Choose the current data and press **Check drift**.")
        st.stop()
    _verdict(report)
    _drift_section(report["features"])
    if report["predicted_risk"]:
        charts.show(charts.predicted_risk_bars(report["predicted_risk"]), key="monitor.risk_chart")
    _performance_section(report["performance"])


def _source_section(run: Run) -> None:
    """Where the current data comes from: the endpoint's collected records, an upload, or Azure Blob Storage."""
    sources = [SOURCE_LOG, SOURCE_FILE] + ([azure_collected.SOURCE_LABEL] if azure_collected.available() else [])
    source = st.radio("Current data", sources, horizontal=True, key="monitor.source")
    if source == azure_collected.SOURCE_LABEL:
        azure_collected.render(run, REPORT_KEY)
    elif source == SOURCE_LOG:
        _collected_source(run)
    else:
        _upload_source(run)


def _collected_source(run: Run) -> None:
    """A folder of records the endpoint collected (refused outside the allowed roots) and which traffic to read."""
    default_dir = os.environ.get(ENV_DIR) or str(settings.REPO_ROOT / DEFAULT_DIR)
    folder = st.text_input(
        "Collected-data folder (the endpoint's RISK_DATA_COLLECTION_DIR)", value=default_dir, key="monitor.folder"
    )
    traffic = st.segmented_control(
        "Which records",
        list(monitor.TRAFFIC_CHOICES),
        format_func=lambda choice: TRAFFIC_LABELS.get(choice, choice),
        default=monitor.ALL_TRAFFIC,
        key="monitor.traffic",
        help="Patients typed in (live) and files scored through the endpoint (batch) are collected and marked.",
    )
    if not st.button("Check drift", type="primary", key="monitor.run_log"):
        return
    st.session_state.pop(REPORT_KEY, None)
    try:
        st.session_state[REPORT_KEY] = run(_readable_folder(folder), folder, traffic or monitor.ALL_TRAFFIC)
    except FolderRefused as exc:
        st.error(f"**This folder cannot be read here:** {exc}")  # the server's folders and the user's own input
    except (DataError, OSError, ValueError) as exc:
        st.error(f"**Cannot read the collected records:** {exc}")


def _upload_source(run: Run) -> None:
    """An uploaded CDC file (refused over the upload limit), checked when its button is pressed."""
    upload = st.file_uploader(
        "CDC data file (CSV, CSV.gz or Parquet; with death_yn for live performance)",
        type=["csv", "gz", "parquet"],
        key="monitor.upload",
    )
    if upload is None:
        return
    if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
        st.error(
            f"**{text.md(upload.name, 120)}** is larger than {MAX_UPLOAD_MB} MB; run `python -m model.monitor` instead."
        )
    elif st.button(f"Check drift in {text.md(upload.name, 120)}", type="primary", key="monitor.run_file"):
        with upload_as_file(upload) as path:
            try:
                st.session_state[REPORT_KEY] = run(path, upload.name)
            except (DataError, ValueError) as exc:
                st.session_state.pop(REPORT_KEY, None)
                st.error(f"**This file cannot be checked:** {text.md(user_facing(exc, path, upload.name))}")


def _verdict(report: dict[str, Any]) -> None:
    """The verdict with its reasons and action, the monitor's warnings, and what was read against what."""
    verdict = report["verdict"]
    details = "".join(f"\n- {r}" for r in report["reasons"]) + f"\n\n{report['action']}"
    if verdict in VERDICT_ICONS:
        word, icon = VERDICT_ICONS[verdict]
        st.error(f"**Verdict: {word}.**{details}", icon=icon)
    elif verdict == monitor.VERDICT_OK:
        st.success(
            "**Verdict: ok.** No material shift beyond chance, and no performance loss where outcomes are known.",
            icon=":material/check_circle:",
        )
    else:
        st.warning(
            "**Verdict: insufficient data.** Too few rows to tell drift from chance.", icon=":material/hourglass_top:"
        )
    for warning in report["warnings"]:
        st.warning(warning)  # model.monitoring.monitor's words about schema values and numbers
    cur = report["current"]
    traffic_read = monitor.traffic_text(cur)
    st.caption(
        f"{text.md(cur['source'], 300)}: {cur['rows_used']:,} of {cur['rows_read']:,} rows used"
        f"{f' ({traffic_read})' if traffic_read else ''}; drift measured on "
        f"{cur['drift_population']}, against {report['reference']['population']}. Model {report['model_version']}; "
        f"G-test per input, Holm-corrected, family-wise alpha {monitor.ALPHA}; limits in docs/monitoring.md."
    )


def _drift_section(features: dict[str, Any]) -> None:
    """PSI per input, the drift table, and the category shares of one chosen input."""
    if not features:
        return
    names = list(features)
    charts.show(charts.psi_bars(features), key="monitor.psi_chart")
    st.dataframe(
        pd.DataFrame(
            {
                "feature": names,
                "PSI": [features[n]["psi"] for n in names],
                "JS distance": [features[n]["js_distance"] for n in names],
                "p (Holm)": [features[n].get("p_adjusted") for n in names],
                "status": [features[n]["status"] for n in names],
            }
        ),
        hide_index=True,
    )
    chosen = st.selectbox("Category shares of", names, key="monitor.feature")
    charts.show(charts.share_bars(features[chosen]), key="monitor.share_chart")


def _performance_section(perf: dict[str, Any] | None) -> None:
    """Live performance where the current data has outcomes: metrics against the card, O/E, slope, calibration."""
    if perf is None:
        st.info("No outcomes in the current data: live performance needs a file with `death_yn` (Yes/No).")
        return
    if not perf["assessed"]:
        st.info(perf["warnings"][0] if perf["warnings"] else "Live performance not assessed.")
        return
    st.header(f"Live performance: {perf['patients']:,.0f} patients with known outcome, {perf['deaths']:,.0f} deaths")
    keys = ("roc_auc", "pr_auc", "brier", "prevalence", "mean_predicted")
    metrics = {
        "metric": keys,
        "live": [perf["live"][k] for k in keys],
        "model card (test)": [perf["reference"][k] for k in keys],
    }
    st.dataframe(pd.DataFrame(metrics), hide_index=True)
    oe, slope = perf["observed_expected"], perf["calibration_slope"]
    st.markdown(
        f"Observed/expected deaths **{oe['ratio']:.2f}** (95% CI {oe['ci_low']:.2f}-{oe['ci_high']:.2f}; "
        f"{oe['observed']:,.0f} observed, {oe['expected']:,.1f} expected); calibration slope **{slope['slope']:.2f}** "
        f"(95% CI {slope['ci_low']:.2f}-{slope['ci_high']:.2f}); ROC-AUC {perf['roc_auc']['roc_auc']:.3f} "
        f"(95% CI {perf['roc_auc']['ci_low']:.3f}-{perf['roc_auc']['ci_high']:.3f})."
    )
    charts.show(
        charts.calibration(
            pd.DataFrame(perf["calibration"]), title="Calibration on the current data's patients with a known outcome"
        ),
        key="monitor.calibration_chart",
    )
