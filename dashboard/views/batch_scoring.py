"""Batch scoring: upload a CDC file, score every row through the endpoint, download the result."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from dashboard.client import EndpointError
from dashboard.ui import charts, downloads, endpoint, page, state, text
from dashboard.ui.uploads import MAX_UPLOAD_MB, upload_as_file, user_facing
from model import batch_score, performance, schema
from model.loader import DataError

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

ctx = page.context()

st.markdown(
    f"Upload a CDC case-surveillance file as **CSV, CSV.gz or Parquet** (any CDC schema version, or just the "
    f"columns {', '.join(f'`{c}`' for c in schema.MODEL_INPUTS)}); at most **{MAX_UPLOAD_MB} MB** "
    f"(gzip a large CSV first), **{MAX_ROWS:,} rows** and {MAX_UNPACKED_MB} MB unpacked. The result keeps the "
    f"model's inputs, `{schema.TARGET}` and the first {PASS_THROUGH.columns} other columns (cells cut at "
    f"{PASS_THROUGH.max_chars} characters). Larger files, or every column: "
    "`python -m model.batch_score --data FILE --out FILE`."
)
upload = st.file_uploader("CDC file", type=["csv", "gz", "parquet"], key="batch.upload")


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _endpoint_scorer(config):  # (canonical frame) -> (probabilities, bands), via the endpoint client
    def score(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        records = frame.astype(str).to_dict("records")
        probs, bands = [], []
        for start in range(0, len(records), REQUEST_RECORDS):
            result = endpoint.score(config, records[start : start + REQUEST_RECORDS], traffic=schema.BATCH)
            probs += [endpoint.probability_of(r) for r in result.results]
            bands += [endpoint.risk_band_of(r) for r in result.results]
            st.session_state["batch.model_version"] = result.model_version
        return np.asarray(probs, dtype=float), np.asarray(bands, dtype=object)

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


def _score_upload(path: Path, name: str, config) -> dict:
    """Stream the file through the endpoint, keeping bounded columns; raises DataError / EndpointError / ValueError."""
    bar = st.progress(0.0, text="Reading the file…")
    scored, rejected, reasons, rows, unpacked, held = [], [], {}, 0, 0, 0
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
    }


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
    b.metric("ROC-AUC", "n/a" if auc is None else f"{auc['roc_auc']:.3f}", help="Needs deaths and survivors.")
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


if upload is not None:
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
        with upload_as_file(upload) as path:
            try:
                st.session_state[RESULT_KEY] = _score_upload(path, upload.name, ctx.endpoint)
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
        st.rerun()  # so the sidebar, drawn before this page, shows what scoring learnt about the endpoint

problem = st.session_state.pop(SCORE_ERROR_KEY, None)
if isinstance(problem, EndpointError) and ctx.endpoint is not None:
    endpoint.show_error(problem, ctx.endpoint)
    st.stop()

result = st.session_state.get(RESULT_KEY)
if result is None:
    st.info("Upload a file and press **Score** to see the summary here.")
    st.stop()

threshold = state.get_threshold()
table: pa.Table = result["scored"]
probability = table.column("probability").to_numpy()
flagged = probability >= threshold
n_scored = len(probability)
n_rejected = 0 if result["rejected"] is None else result["rejected"].num_rows
assumptions = state.get_icu_assumptions()
flagged_share = float(flagged.mean()) if n_scored else 0.0

st.subheader(f"{text.md(result['name'], 120)}: {_rows(result['rows'])} (model {text.md(result['model_version'], 120)})")
a, b, c, d = st.columns(4)
a.metric("Rows scored", f"{n_scored:,}")
b.metric(
    f"Patients flagged (≥ {threshold:.3f})",
    f"{int(flagged.sum()):,}",
    help="Threshold shared with the Threshold explorer; change it there.",
)
c.metric("Expected deaths", f"{probability.sum():,.1f}", help="Sum of the calibrated probabilities.")
d.metric(
    "ICU admissions (expected)",
    f"{flagged.sum() * assumptions.icu_share:,.1f}",
    help="This file's flagged patients × the ICU page's share of flagged patients needing ICU.",
)
st.caption(
    f"ICU: {assumptions.icu_share:.0%} of flagged patients need ICU (the ICU saturation page's constant share); "
    f"this file's {int(flagged.sum()):,} flagged patients ({flagged_share:.1%} of its rows) would need about "
    f"{flagged.sum() * assumptions.icu_share:,.1f} ICU admissions. Beds over time: the ICU saturation page."
)
if n_rejected:
    st.warning(
        f"**{_rows(n_rejected)} could not be scored** (values outside the schema); they are in the "
        "rejects download with the reason."
    )
    st.dataframe(
        pd.DataFrame({"reason": list(result["reasons"]), "rows": list(result["reasons"].values())}), hide_index=True
    )

bands = pd.Series(table.column("risk_band").to_numpy(zero_copy_only=False))
st.plotly_chart(charts.band_counts(bands), config={"displayModeBar": False})


if schema.TARGET in table.column_names:
    assert ctx.model is not None  # run_app stopped the page otherwise
    reference = (ctx.model.card.get("metrics") or {}).get("test", {}).get("roc_auc")
    _show_outcome_check(
        performance.against_outcomes(table.column(schema.TARGET).to_pandas(), probability, threshold, reference)
    )

stem = result["name"].split(".")[0] or "scored"
st.download_button(
    "Download the scored file (CSV)",
    data=downloads.csv_download(table, flagged),
    file_name=f"{stem}.scored.csv",
    mime="text/csv",
    key="batch.download",
)
if n_rejected:
    st.download_button(
        "Download the rejected rows (CSV)",
        data=downloads.csv_download(result["rejected"]),
        file_name=f"{stem}.rejects.csv",
        mime="text/csv",
        key="batch.download_rejects",
    )
