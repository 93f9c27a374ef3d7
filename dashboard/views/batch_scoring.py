"""Batch scoring: upload a CDC file, score every row through the endpoint, download the result."""

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboard.ui import charts, downloads, endpoint, icu, page, state, text
from dashboard.ui.artifacts import ModelArtifact
from dashboard.ui.uploads import MAX_UPLOAD_MB, upload_as_file, user_facing
from model.core import artifact, schema
from model.data.loader import DataError
from model.monitoring import monitor
from model.planning import capacity
from model.serving import batch_score, lookup
from model.serving.client import EndpointConfig, EndpointError
from model.stats import performance

MAX_ROWS = 1_000_000
# A file is read unpacked (a .csv.gz of a few MB can unpack to GBs): at most this much is read, about
# twice what MAX_ROWS CDC rows need (~110 bytes each). The result kept for the summary and the download
# (the model's inputs, death_yn, row_number and PASS_THROUGH's bounded columns) may hold at most MAX_HELD_MB.
MAX_UNPACKED_MB = 256
MAX_HELD_MB = 256
PASS_THROUGH = batch_score.PassThrough(columns=5, max_chars=200)
REQUEST_RECORDS = 10_000  # records per endpoint request (the endpoint accepts up to 50k)
RESULT_KEY = "batch.result"
SCORE_ERROR_KEY = "batch.score_error"  # an endpoint failure, shown on the rerun that follows it


def render() -> None:
    """The page: what a file may hold, the upload and its scoring, then the summary and the downloads."""
    ctx = page.context()
    _intro()
    upload = st.file_uploader("CDC file", type=["csv", "gz", "parquet"], key="batch.upload")
    if upload is not None:
        _score_section(upload, ctx)
    problem = st.session_state.pop(SCORE_ERROR_KEY, None)
    if isinstance(problem, EndpointError) and ctx.endpoint is not None:
        endpoint.show_error(problem, ctx.endpoint)
        st.stop()
    result = st.session_state.get(RESULT_KEY)
    if result is None:
        st.info("Upload a file and press **Score** to see the summary here.")
        st.stop()
    assert ctx.model is not None  # run_app stopped the page otherwise
    _summary(result, ctx.model)


def _intro() -> None:
    """What a file may be and hold, and where larger files go."""
    st.markdown(
        f"Upload a CDC case-surveillance file as **CSV, CSV.gz or Parquet** (any CDC schema version, or just the "
        f"columns {', '.join(f'`{c}`' for c in schema.MODEL_INPUTS)}); at most **{MAX_UPLOAD_MB} MB** "
        f"(gzip a large CSV first), **{MAX_ROWS:,} rows** and {MAX_UNPACKED_MB} MB unpacked. The result keeps the "
        f"model's inputs, `{schema.TARGET}` and the first {PASS_THROUGH.columns} other columns (cells cut at "
        f"{PASS_THROUGH.max_chars} characters). Larger files, or every column: "
        "`python -m model.batch_score --data FILE --out FILE`."
    )


def _score_section(upload: UploadedFile, ctx: page.PageContext) -> None:
    """Refuse a file over the upload limit or without usable endpoint settings; else score it on the button."""
    if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
        st.error(
            f"**{text.md(upload.name, 120)} is {upload.size / 2**20:,.0f} MB**; this page takes at most "
            f"{MAX_UPLOAD_MB} MB. Score it with `python -m model.batch_score --data FILE --out FILE`."
        )
        st.stop()
    if ctx.endpoint is None:
        st.error(f"**The endpoint settings are not usable:** {ctx.endpoint_error}")
        st.stop()
    if st.button(f"Score {text.md(upload.name, 120)}", type="primary", key="batch.score"):
        assert ctx.model is not None  # run_app stopped the page otherwise
        _score_file(upload, ctx.endpoint, ctx.model.directory)
        st.rerun()  # so the sidebar, drawn before this page, shows what scoring learnt about the endpoint


def _score_file(upload: UploadedFile, config: EndpointConfig, model_dir: Path) -> None:
    """Score the upload into RESULT_KEY; a bad file stops the page with its message, an endpoint failure is kept
    under SCORE_ERROR_KEY for the rerun."""
    with upload_as_file(upload) as path:
        try:
            st.session_state[RESULT_KEY] = _score_upload(path, upload.name, config, model_dir)
        except DataError as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.error(f"**This file cannot be scored:** {text.md(user_facing(exc, path, upload.name))}")
            st.stop()
        except ValueError as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.error(f"**This file cannot be scored:** {text.md(exc)}")
            st.stop()
        except EndpointError as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.session_state[SCORE_ERROR_KEY] = exc


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _scores_of(results: list[Any]) -> dict[str, list[Any]]:
    """The endpoint's answers as columns; a field an answer lacks stays empty (None), never made up."""
    columns: dict[str, list[Any]] = {f: [] for f in ("probability", "risk_band", "unrecorded", "ci_low", "ci_high")}
    columns |= {"model": [], "inputs_used": []}
    for r in results:
        interval = r.get("interval") or (None, None)
        used = r.get("inputs_used")
        columns["probability"].append(endpoint.probability_of(r))
        columns["risk_band"].append(endpoint.risk_band_of(r))
        columns["unrecorded"].append(r.get("probability_if_unrecorded_survived"))
        columns["ci_low"].append(interval[0])
        columns["ci_high"].append(interval[1])
        columns["model"].append(r.get("model"))
        columns["inputs_used"].append(lookup.INPUTS_SEPARATOR.join(used) if isinstance(used, list) else None)
    return columns


def _endpoint_scorer(config: EndpointConfig) -> batch_score.Scorer:
    """(canonical frame) -> every field the endpoint answers per row (both ends, interval, model), via the client."""

    def score(frame: pd.DataFrame) -> batch_score.Scores:
        records = frame.astype(str).to_dict("records")
        results: list[Any] = []
        for start in range(0, len(records), REQUEST_RECORDS):
            result = endpoint.score(config, records[start : start + REQUEST_RECORDS], traffic=schema.BATCH)
            results += result.results
            st.session_state["batch.model_version"] = result.model_version
        c = _scores_of(results)
        number = {f: pa.array(c[f], pa.float64()) for f in ("unrecorded", "ci_low", "ci_high")}
        return batch_score.Scores(
            probability=np.asarray(c["probability"], dtype=float),
            risk_band=np.asarray(c["risk_band"], dtype=object),
            unrecorded=number["unrecorded"],
            ci_low=number["ci_low"],
            ci_high=number["ci_high"],
            model=pa.array(c["model"], pa.string()).dictionary_encode(),
            inputs_used=pa.array(c["inputs_used"], pa.string()).dictionary_encode(),
        )

    return score


def _check_limits(rows: int, unpacked: int, held: int) -> None:
    """ValueError once the file passes a limit: rows read, bytes unpacked, or bytes the result holds."""
    cli = "score it with `python -m model.batch_score --data FILE --out FILE`, which writes to disk"
    if rows > MAX_ROWS:
        raise ValueError(f"the file has more than {MAX_ROWS:,} rows; {cli}")
    if unpacked > MAX_UNPACKED_MB << 20:
        raise ValueError(f"the file unpacks to more than {MAX_UNPACKED_MB} MB (after {rows:,} rows); {cli}")
    if held > MAX_HELD_MB << 20:
        raise ValueError(f"the scored rows would hold more than {MAX_HELD_MB} MB here (after {rows:,} rows); {cli}")


@st.cache_resource(show_spinner="Loading the model's risk tables…", max_entries=4)
def _risk(model_dir: str, stamp: int) -> lookup.RiskLookup:
    """The local model's lookup, for judging each model on its own rows (as the Monitoring page does)."""
    return monitor.load_model(model_dir)


def _per_model_check(path: Path, model_dir: Path) -> dict[str, Any] | None:
    """Each model on its own rows of the file against its own card figure: `model.monitoring.monitor`'s judgement.

    The intake model is judged on every intake-population row with a known outcome, the in-hospital
    model on those whose hospital and ICU answers are both Yes/No, each with its own risk table, as on
    the card's test split. None when the file records no outcomes. A second pass over the file, run
    only after scoring passed the page's limits.
    """
    risk = _risk(str(model_dir), (model_dir / "model_card.json").stat().st_mtime_ns)
    counts = monitor.aggregate_file(path, risk)
    if counts.deaths is None:
        return None
    card = artifact.load_card(model_dir)
    report = monitor.performance_report(counts, monitor.model_views(model_dir, risk, card))
    return {"models": report["models"], "model_version": risk.model_version, "excluded": counts.excluded}


def _score_upload(path: Path, name: str, config: EndpointConfig, model_dir: Path) -> dict[str, Any]:
    """Stream the file through the endpoint, keeping bounded columns; raises DataError / EndpointError / ValueError."""
    bar = st.progress(0.0, text="Reading the file…")
    scored, rejected, rows, unpacked, held = [], [], 0, 0, 0
    reasons: dict[str, int] = {}
    estimate = max(1, int(path.stat().st_size / 90))  # ~90 bytes per CDC CSV row: only drives the bar
    for chunk in batch_score.iter_scored(path, _endpoint_scorer(config), state.get_threshold(), PASS_THROUGH):
        rows += chunk.rows_read
        unpacked += chunk.bytes_read
        held += chunk.scored.nbytes + (chunk.rejected.nbytes if chunk.rejected is not None else 0)
        _check_limits(rows, unpacked, held)
        scored.append(chunk.scored)
        if chunk.rejected is not None:
            rejected.append(chunk.rejected)
        for reason, n in chunk.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        bar.progress(min(rows / estimate, 0.99), text=f"Scored {rows:,} rows…")
    bar.progress(1.0, text=f"Scored {rows:,} rows.")
    return {
        "name": name,
        "rows": rows,
        "scored": pa.Table.from_batches(scored),
        "rejected": pa.Table.from_batches(rejected) if rejected else None,
        "reasons": reasons,
        "model_version": st.session_state.get("batch.model_version", "unknown"),
        "per_model": _guarded_per_model_check(path, model_dir) if rows else None,
    }


def _guarded_per_model_check(path: Path, model_dir: Path) -> dict[str, Any] | None:
    """`_per_model_check`, whose failure costs only that table: the scores and the routed check stay shown."""
    try:
        return _per_model_check(path, model_dir)
    except Exception as exc:  # the monitor's own failure: shown on the page, never silent
        return {"error": f"{type(exc).__name__}: {exc}"}


def _show_outcome_check(check: dict | None) -> None:
    """Observed against predicted, for files that record outcomes (e.g. a month of closed cases)."""
    st.subheader("Against the outcomes in this file")
    if check is None:
        st.info(f"`{schema.TARGET}` holds no Yes/No outcome in this file, so the risks cannot be checked against it.")
        return
    oe, auc = check["observed_expected"], check["roc_auc"]
    a, b, c, d = st.columns(4)
    ci = f"95% CI {oe['ci_low']:.2f} to {oe['ci_high']:.2f}"
    a.metric("Observed / expected deaths", f"{oe['ratio']:.2f}", help=ci)
    b.metric(
        "ROC-AUC of the risks shown",
        "n/a" if auc is None else f"{auc['roc_auc']:.3f}",
        help="Each row's risk from the model the endpoint chose for it; needs deaths and survivors. No model card "
        "figure describes this mix of models: each model is compared with its own figure below.",
    )
    c.metric("Recall at the threshold", "n/a" if check["recall"] is None else f"{check['recall']:.1%}")
    d.metric("Precision at the threshold", "n/a" if check["precision"] is None else f"{check['precision']:.1%}")
    st.caption(
        f"{_rows(check['known'])} with a known outcome ({check['deaths']:,} deaths: {oe['observed']:,.0f} observed "
        f"against {oe['expected']:,.1f} expected); {_rows(check['unknown'])} with a missing or unknown outcome "
        "left out of this check."
    )
    if not oe["ci_low"] <= 1 <= oe["ci_high"]:
        direction = "more" if oe["ratio"] > 1 else "fewer"
        st.warning(
            f"**{direction.capitalize()} deaths than the model expects** in this file (95% CI of observed/expected "
            f"{oe['ci_low']:.2f} to {oe['ci_high']:.2f}). If these patients are like today's, the model needs "
            "updating: see the Monitoring page, or `python -m model.recalibrate`.",
            icon=":material/balance:",
        )


def _auc_text(auc: dict[str, Any]) -> str:
    return f"{auc['roc_auc']:.3f} (95% CI {auc['ci_low']:.3f} to {auc['ci_high']:.3f})"


def _per_model_rows(models: dict[str, Any]) -> pd.DataFrame:
    """One row per judged model: its patients here, its ROC-AUC here against its card's test figure, O/E."""
    rows = []
    for m in models.values():
        reference = m["reference"].get("roc_auc")
        row = {
            "model": m["label"],
            "patients (known outcome)": f"{m['patients']:,.0f}",
            "deaths": f"{m['deaths']:,.0f}",
            "ROC-AUC on the card's test split": "n/a" if reference is None else f"{reference:.3f}",
        }
        if m["assessed"]:
            oe = m["observed_expected"]
            row["ROC-AUC here"] = _auc_text(m["roc_auc"])
            row["observed / expected here"] = f"{oe['ratio']:.2f} ({oe['ci_low']:.2f} to {oe['ci_high']:.2f})"
        else:
            needed = f"not assessed: fewer than {monitor.MIN_EVENTS} deaths or survivors"
            row["ROC-AUC here"] = row["observed / expected here"] = needed
        rows.append(row)
    return pd.DataFrame(rows)


def _show_per_model(check: dict[str, Any] | None, served: str) -> None:
    """Each model judged on its own rows against its own card figure (the Monitoring page's method)."""
    if check is None:
        return
    st.markdown("**Each model against its own model-card figure**")
    if "error" in check:
        st.warning(
            f"**The per-model check could not run** (`model.monitoring.monitor` failed): {text.md(check['error'], 300)}"
        )
        return
    st.dataframe(_per_model_rows(check["models"]), hide_index=True)
    version = check["model_version"]
    note = (
        f" The tables are the dashboard's model ({text.md(version, 120)}); the endpoint served {text.md(served, 120)}."
        if version != served
        else ""
    )
    st.caption(
        "Judged as the Monitoring page judges a model: the intake model on every row of the intake population "
        "with a known outcome, the in-hospital model on those whose hospital and ICU answers are both Yes or No, "
        "each with its own risk table, against its own ROC-AUC on the model card's test split (95% CI: DeLong; "
        f"observed/expected: binomial). Rows outside the intake population left out: {check['excluded']:,} "
        f"(probable cases with neither onset nor specimen date). The race-aware model is not judged here.{note}"
    )


def _icu_text(need: capacity.IcuNeed, rates: tuple[float, float], counts: tuple[int, int], other: float | None) -> str:
    """Where the ICU figure comes from and what it assumes, in words (numbers with their units and end)."""
    (rf, ru), (nf, nu) = rates, counts
    admitted = f"this file's {nf:,} flagged patients need about {nf * rf:,.1f} ICU admissions and its {nu:,} " + (
        f"unflagged about {nu * ru:,.1f}"
    )
    if need.source == "constant":
        return (
            f"ICU: this model has no ICU-admission table (`evaluation/{capacity.ICU_TABLE}`), so {rf:.1%} of every "
            f"reported case, flagged or not, is assumed to need ICU (the ICU saturation page's input; CDC: 2% of "
            f"1,320,488 cases, MMWR 2020;69(24)): {admitted}. Beds over time: the ICU saturation page."
        )
    assert need.end is not None
    other_end = "upper" if need.end == "lower" else "lower"
    return (
        f"ICU, **{need.end} end** (the end chosen on the ICU saturation page: {capacity.ICU_ENDS[need.end]}): the "
        f"model's ICU table (`evaluation/{capacity.ICU_TABLE}`, the test split's reported cases) admits {rf:.2%} of "
        f"flagged and {ru:.2%} of unflagged reported cases at this threshold, so {admitted}. At the {other_end} end: "
        f"{other:,.1f} in all. Assumes this file's patients are like the test split's. Beds over time: the ICU "
        "saturation page."
    )


def _icu_need(
    model_dir: Path, card: dict[str, Any], chosen: icu.IcuAssumptions, threshold: float, flagged: np.ndarray
) -> dict[str, Any] | None:
    """Expected ICU admissions of this file at the ICU page's end (and the other end), or None with a warning."""
    counts = (int(flagged.sum()), int(flagged.size - flagged.sum()))
    try:
        source = icu.need_source(model_dir, card, chosen)
        rates = icu.icu_rates(source.need, threshold)
        other = None
        if source.need.source == "model":
            flip = "upper" if chosen.icu_end == "lower" else "lower"
            rf, ru = icu.icu_rates(
                icu.need_source(model_dir, card, dataclasses.replace(chosen, icu_end=flip)).need, threshold
            )
            other = counts[0] * rf + counts[1] * ru
    except (ValueError, OSError) as exc:  # a stored table is unusable (CapacityInputError says which and how)
        st.warning(f"**ICU admissions cannot be estimated:** {text.md(exc)}", icon=":material/error:")
        return None
    total = counts[0] * rates[0] + counts[1] * rates[1]
    return {"total": total, "text": _icu_text(source.need, rates, counts, other)}


def _summary(result: dict[str, Any], model: ModelArtifact) -> None:
    """The scored file at the shared threshold: counts, ICU need, rejects, risk bands, outcomes, downloads."""
    threshold = state.get_threshold()
    table: pa.Table = result["scored"]
    probability = table.column("probability").to_numpy()
    flagged = probability >= threshold
    icu_need = _icu_need(model.directory, model.card, state.get_icu_assumptions(), threshold, flagged)
    st.header(
        f"{text.md(result['name'], 120)}: {_rows(result['rows'])} (model {text.md(result['model_version'], 120)})"
    )
    _summary_metrics(probability, flagged, threshold, icu_need)
    n_rejected = 0 if result["rejected"] is None else result["rejected"].num_rows
    if n_rejected:
        _rejects(n_rejected, result["reasons"])
    bands = pd.Series(table.column("risk_band").to_numpy(zero_copy_only=False))
    st.plotly_chart(charts.band_counts(bands), config={"displayModeBar": False})
    if schema.TARGET in table.column_names:
        _show_outcome_check(
            performance.against_outcomes(table.column(schema.TARGET).to_pandas(), probability, threshold)
        )
        _show_per_model(result.get("per_model"), result["model_version"])
    _downloads(result, flagged, threshold, n_rejected)


def _summary_metrics(
    probability: np.ndarray, flagged: np.ndarray, threshold: float, icu_need: dict[str, Any] | None
) -> None:
    """Rows scored, patients flagged, expected deaths and (when it can be estimated) expected ICU admissions."""
    a, b, c, d = st.columns(4)
    a.metric("Rows scored", f"{len(probability):,}")
    b.metric(
        f"Patients flagged (≥ {threshold:.3f})",
        f"{int(flagged.sum()):,}",
        help="Flag: the risk among recorded outcomes (the range's high end) ≥ the threshold shared with the "
        "Threshold explorer; change it there.",
    )
    c.metric("Expected deaths", f"{probability.sum():,.1f}", help="Sum of the calibrated probabilities (the high end).")
    if icu_need is not None:
        d.metric(
            "ICU admissions (expected)",
            f"{icu_need['total']:,.1f}",
            help="This file's flagged patients × ICU admissions per flagged reported case, plus its unflagged "
            "patients × those per unflagged case, at the end chosen on the ICU saturation page.",
        )
        st.caption(icu_need["text"])


def _rejects(n_rejected: int, reasons: dict[str, int]) -> None:
    """How many rows could not be scored, and why."""
    st.warning(
        f"**{_rows(n_rejected)} could not be scored** (values outside the schema); they are in the "
        "rejects download with the reason."
    )
    st.dataframe(pd.DataFrame({"reason": list(reasons), "rows": list(reasons.values())}), hide_index=True)


def _downloads(result: dict[str, Any], flagged: np.ndarray, threshold: float, n_rejected: int) -> None:
    """The scored file (and the rejected rows, if any) as CSV, with what each scored column means."""
    stem = result["name"].split(".")[0] or "scored"
    st.download_button(
        "Download the scored file (CSV)",
        data=downloads.csv_download(result["scored"], flagged, batch_score.flag_rule(threshold)),
        file_name=f"{stem}.scored.csv",
        mime="text/csv",
        key="batch.download",
    )
    st.caption(
        "Each scored row: `probability` (the risk among recorded outcomes, the range's high end) with its 95% "
        "interval `ci_low`–`ci_high`, `probability_if_unrecorded_survived` (the low end), `risk_band`, `flagged` "
        f"and `flag_rule` (the flag uses the high end: `{batch_score.flag_rule(threshold)}`), `model` (which model "
        "scored the row) and `inputs_used`."
    )
    if n_rejected:
        st.download_button(
            "Download the rejected rows (CSV)",
            data=downloads.csv_download(result["rejected"]),
            file_name=f"{stem}.rejects.csv",
            mime="text/csv",
            key="batch.download_rejects",
        )
