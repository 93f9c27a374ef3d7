"""The page list, in one place: the entry file's `st.navigation`, the Home page's cards and the headers.

Adding a page means adding its script under `dashboard/views/` and one `PageSpec` here; nothing else
lists pages, so the menu, the Home cards and the tests cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parents[1] / "views"


@dataclass(frozen=True)
class PageSpec:
    script: str  # file name under dashboard/views/
    title: str
    url_path: str  # kept from the first release's file-based pages, so shared links keep working
    icon: str  # a Material icon: served by Streamlit itself, never fetched from the internet
    subtitle: str  # under the page title
    audience: str  # the Home page's card: who uses the page for what
    needs_model: bool = True  # stop with a message when no model artifact is found

    @property
    def path(self) -> Path:
        return VIEWS / self.script


HOME = PageSpec(
    "home.py",
    "Home",
    "",
    ":material/home:",
    "Risk of death for reported COVID-19 cases, from the lab intake form to ICU planning.",
    "Everyone: what the tool does and how to read a risk.",
    needs_model=False,
)
PAGES: tuple[PageSpec, ...] = (
    HOME,
    PageSpec(
        "patient_risk.py",
        "Patient risk",
        "Patient_risk",
        ":material/person_search:",
        "Enter what the intake form holds; the model on the scoring endpoint returns the calibrated risk of death.",
        "Lab clerks: type a patient in, get the risk, its band and why.",
        needs_model=False,  # the form still works against the endpoint when the local artifact is missing
    ),
    PageSpec(
        "threshold_explorer.py",
        "Threshold explorer",
        "Threshold_explorer",
        ":material/tune:",
        "Choose the risk above which a patient is flagged, and see what it does to 1,000 cases like the test set's.",
        "Analysts: choose the risk that flags a patient; ROC, PR and decision curves.",
    ),
    PageSpec(
        "icu_saturation.py",
        "ICU saturation",
        "ICU_saturation",
        ":material/bed:",
        "When do the patients we flag fill the ICU, how sure is that, and what does the operating threshold change?",
        "Planners: ICU beds the flagged patients need, and when the ICU fills up.",
    ),
    PageSpec(
        "model_card.py",
        "Model card",
        "Model_card",
        ":material/description:",
        "What the model learned from, how well it ranks and calibrates, and its limits.",
        "Everyone: data, metrics, calibration, subgroups and limits.",
    ),
    PageSpec(
        "batch_scoring.py",
        "Batch scoring",
        "Batch_scoring",
        ":material/upload_file:",
        "Score a whole file of patients through the endpoint, see what it means for flags, deaths and ICU beds.",
        "Operators: score a whole file and download the risks.",
    ),
    PageSpec(
        "monitoring.py",
        "Monitoring",
        "Monitoring",
        ":material/monitoring:",
        "Has the case mix drifted away from the training data, and does the model still perform?",
        "ML engineers: drift against training, performance, and when to recalibrate or retrain.",
    ),
)


def streamlit_pages() -> list[st.Page]:
    """`st.Page` objects for `st.navigation`, in menu order; Home is the default page."""
    return [
        st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path or None, default=spec is HOME)
        for spec in PAGES
    ]


def spec_for(current: st.Page) -> PageSpec:
    """The spec of the page `st.navigation` chose (matched on its URL path, which is unique)."""
    for spec in PAGES:
        if (spec.url_path or "") == (current.url_path or ""):
            return spec
    raise LookupError(f"st.navigation returned a page not in navigation.PAGES: {current.url_path!r}")
