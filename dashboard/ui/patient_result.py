"""What the Patient risk page says about a scored patient: the risk as HTML, the charts' text alternatives
and tables, and how an out-of-date result looks.

Pure functions (no Streamlit), so the page stays a layout and the tests can read the same numbers.
`last` is the page's stored result (`patient_risk._score`): answers, record, probability, interval, low,
low_interval, risk_band, model, inputs_used, baseline, contributions, what_if, ...

Every number here is formatted by the page itself; what the endpoint sends as text (the risk band, the data
period) is escaped (`dashboard.ui.text`). Labels come from `model.core.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dashboard.ui import patient_form, text, theme
from model.core import schema

RANGE_WHY = (
    "Why a range: many reported cases never had their outcome recorded; the higher number is the risk among "
    "recorded outcomes, the lower one counts every unrecorded case as a survival, and the true risk per "
    "reported case lies between them."
)
STALE_LABEL = "previous answers, out of date"
# An out-of-date result is dimmed, not hidden (the clerk may still compare): colours drained, text in the
# muted ink (5.5:1 or more on white, so it stays readable: WCAG 1.4.3), charts and tables faded, the risk
# struck through, a dashed frame round all of it. `.st-key-<key>` is the class Streamlit gives a keyed
# container; the page puts everything derived from the answers in the one with STALE_KEY.
STALE_KEY = "patient-result-stale"
STALE_CSS = f"""<style>
.st-key-{STALE_KEY} {{ filter: grayscale(1); border: 2px dashed {theme.MUTED}; border-radius: 10px; padding: 0.8rem; }}
.st-key-{STALE_KEY} p, .st-key-{STALE_KEY} li, .st-key-{STALE_KEY} .risk-number,
.st-key-{STALE_KEY} [data-testid="stMetricValue"] {{ color: {theme.MUTED}; }}
.st-key-{STALE_KEY} .risk-number {{ text-decoration: line-through; }}
.st-key-{STALE_KEY} [data-testid="stPlotlyChart"], .st-key-{STALE_KEY} [data-testid="stDataFrame"] {{ opacity: 0.4; }}
.risk-badge-stale {{ background: #FFFFFF; color: {theme.INK}; border: 2px dashed {theme.MUTED}; }}
</style>"""


@dataclass(frozen=True)
class References:
    """The marks the risk scale compares the patient with (None: not available)."""

    base_rate: float | None
    age_group_rate: float | None
    age_group_label: str
    threshold: float


def _band_html(band: str, stale: bool) -> str:
    """The band badge; out of date a grey dashed pill that says so (the band's colour would read as current)."""
    if stale:
        return f'<span class="risk-badge risk-badge-stale">{text.html_text(band, 40)} ({STALE_LABEL})</span>'
    return theme.band_badge(band)  # escapes the band itself


def risk_html(last: dict, stale: bool = False) -> str:
    """The risk as the range [if unrecorded survived, among recorded outcomes], each end with its 95% interval.

    Every value is a number the page formats itself (the band, the one text the endpoint sends, is escaped)."""
    p, interval = last["probability"], last.get("interval")
    caption = "Probability of death" + (f" ({STALE_LABEL})" if stale else "")
    head = f"<div class='risk-caption' data-testid='risk-caption'>{caption}</div>"
    band = f"<div>{_band_html(str(last['risk_band']), stale)} <span class='risk-caption'>risk band</span></div>"
    if last.get("low") is None:  # an endpoint without the recording range: one number, as before
        ci = (
            f"<div class='risk-caption' data-testid='risk-interval'>{theme.format_interval(interval)}</div>"
            if interval
            else ""
        )
        number = f"<div class='risk-number' data-testid='risk-probability'>{theme.format_risk(p)}</div>"
        return head + number + ci + band
    low, low_interval = last["low"], last.get("low_interval")
    return (
        head + "<div class='risk-number' data-testid='risk-range' style='font-size:2.2rem'>"
        f"{theme.format_risk(low)} to "
        f"<span data-testid='risk-probability'>{theme.format_risk(p)}</span></div>"
        f"<div class='risk-caption' data-testid='risk-interval-low'>{theme.format_risk(low)} if every unrecorded "
        f"outcome was a survival{f' ({theme.format_interval(low_interval)})' if low_interval else ''}</div>"
        f"<div class='risk-caption' data-testid='risk-interval'>{theme.format_risk(p)} among recorded outcomes"
        f"{f' ({theme.format_interval(interval)})' if interval else ''}</div>" + band
    )


def inputs_text(last: dict) -> str:
    """Which answers the risk used, in words (answers left out as "Not known" are not among them)."""
    used_names = last.get("inputs_used") or []
    used = [schema.FEATURES_BY_NAME[n].label.lower() for n in used_names if n in schema.FEATURES_BY_NAME]
    left_out = [schema.FEATURES_BY_NAME[n].label.lower() for n in last.get("answers", {}) if n not in used_names]
    text = ", ".join(used) or "the answers given"
    return text + (f" (not used: {', '.join(left_out)})" if left_out else "")


def _where(value: float, threshold: float) -> str:
    return "at or above" if value >= threshold else "below"


def scale_summary(last: dict, refs: References) -> str:
    """The risk scale in words (its text alternative): where the patient sits, against what."""
    p, low, interval = last["probability"], last.get("low"), last.get("interval")
    shown = f"{theme.format_risk(low)} to {theme.format_risk(p)}" if low is not None else theme.format_risk(p)
    parts = [f"Risk scale (log, 0.01% to 100%): this patient {shown}, in the {schema.risk_band(p)} band"]
    if interval:
        parts[0] += f" ({theme.format_interval(interval)} among recorded outcomes)"
    marks = []
    if refs.base_rate is not None:
        marks.append(f"base rate {theme.format_risk(refs.base_rate)}")
    if refs.age_group_rate is not None:
        marks.append(f"mean predicted risk at age {refs.age_group_label} {theme.format_risk(refs.age_group_rate)}")
    marks.append(f"operating threshold {theme.format_risk(refs.threshold)}")
    verdict = f"the risk among recorded outcomes is {_where(p, refs.threshold)} the threshold"
    return ". ".join([parts[0], "Marks: " + ", ".join(marks) + f"; {verdict}."])


def scale_table(last: dict, refs: References) -> pd.DataFrame:
    """Every mark on the risk scale as a row: what it is, the risk, its 95% interval where there is one."""
    rows = []
    if last.get("low") is not None:
        rows.append(("this patient, if every unrecorded outcome was a survival", last["low"], last.get("low_interval")))
    rows.append(("this patient, among recorded outcomes", last["probability"], last.get("interval")))
    if refs.base_rate is not None:
        rows.append(("base rate (test cases with a known outcome)", refs.base_rate, None))
    if refs.age_group_rate is not None:
        rows.append((f"mean predicted risk at age {refs.age_group_label}", refs.age_group_rate, None))
    rows.append(("operating threshold", refs.threshold, None))
    return pd.DataFrame(
        [
            {
                "mark": what,
                "risk": theme.format_risk(value),
                "95% interval": f"{theme.format_risk(ci[0])} to {theme.format_risk(ci[1])}" if ci else "",
            }
            for what, value, ci in rows
        ]
    )


def contributions(last: dict) -> list[tuple[str, float]]:
    """("Field: answer", probability points) of each input used, largest share first."""
    shares = sorted((last.get("contributions") or {}).items(), key=lambda kv: -abs(kv[1]))
    return [
        (f"{schema.FEATURES_BY_NAME[n].label}: {patient_form.label_of(n, last['record'].get(n, ''))}", v)
        for n, v in shares
    ]


def why_summary(last: dict) -> str:
    """The why-chart in words: each input's share and what they add up from and to."""
    shares = "; ".join(f"{label}: {value * 100:+.1f} points" for label, value in contributions(last))
    return (
        f"{shares}. They add up from the mean risk of the training patients ({last['baseline']:.1%}) to this "
        f"patient's risk among recorded outcomes ({last['probability']:.1%}; exact Shapley values of the inputs "
        "used; answers left out as not known have no share)."
    )


def why_table(last: dict) -> pd.DataFrame:
    """The why-chart's bars: start, each input's share (points) and the risk after it, then this patient."""
    running = last["baseline"]
    rows = [{"step": "mean risk (training patients)", "change (points)": "", "risk after": f"{running:.1%}"}]
    for label, value in contributions(last):
        running += value
        rows.append({"step": label, "change (points)": f"{value * 100:+.1f}", "risk after": f"{running:.1%}"})
    rows.append({"step": "this patient", "change (points)": "", "risk after": f"{last['probability']:.1%}"})
    return pd.DataFrame(rows)


def what_if_frame(last: dict) -> pd.DataFrame:
    """Every other answer the form offers, one at a time: field, the other answer, its risk, the change."""
    frame = pd.DataFrame(last.get("what_if") or [], columns=["field", "if it were", "risk"])
    if frame.empty:
        return frame
    pairs = zip(frame["field"], frame["if it were"], strict=True)
    frame["if it were"] = [patient_form.label_of(name, value) for name, value in pairs]
    frame["field"] = frame["field"].map(lambda n: schema.FEATURES_BY_NAME[n].label)
    frame["change (points)"] = (frame["risk"] - last["probability"]) * 100
    return frame


def how_to_read(last: dict, period: str) -> str:
    """The risk per 1,000 cases like this one, for the period the model describes (Markdown)."""
    interval = last.get("interval")
    low = last.get("low")
    words = (
        f"**How to read this risk.** Of 1,000 reported cases like this one whose outcome was recorded, about "
        f"{last['probability'] * 1000:,.0f} ({theme.format_interval(interval) if interval else 'interval not given'})"
        f" ended in death among {text.md(period, 500) if period else 'the training data'}"
    )
    if low is not None:
        words += f"; counting every case whose outcome was never recorded as a survival, about {low * 1000:,.0f}"
    return (
        words + ". Case fatality fell several-fold after the first wave: for a later period, check the model card's "
        "date and the Monitoring page. It ranks patients for triage and sizes groups for planning; it is not a "
        "diagnosis and does not replace clinical judgement."
    )
