"""The page list, in one place: the entry file's `st.navigation`, the Home page's cards and the headers.

Adding a page means adding its module under `dashboard/views/` (one `render()` made of section functions)
and one `PageSpec` here; nothing else lists pages, so the menu, the Home cards and the tests cannot drift apart.

Each page is registered as a callable (`PageSpec.render`), not as a script file: a page is then a function
that a complexity check can see, and its module is imported only when the page is first shown.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parents[1] / "views"
VIEWS_PACKAGE = "dashboard.views"


@dataclass(frozen=True)
class PageSpec:
    script: str  # file name under dashboard/views/: the module whose render() draws the page
    title: str
    url_path: str  # kept from the first release's file-based pages, so shared links keep working
    icon: str  # a Material icon: served by Streamlit itself, never fetched from the internet
    subtitle: str  # under the page title
    audience: str  # the Home page's card: who uses the page for what
    needs_model: bool = True  # stop with a message when no model artifact is found

    @property
    def module(self) -> str:
        """The page's module (`dashboard.views.<script's stem>`)."""
        return f"{VIEWS_PACKAGE}.{Path(self.script).stem}"

    @property
    def page_url_path(self) -> str:
        """The URL path `st.Page` is given: Home's is its file's stem, as when pages were script files
        (the default page is served at the root either way; the stem keeps its page id unchanged)."""
        return self.url_path or Path(self.script).stem

    def render(self) -> None:
        """Draw the page: import its module on first use (importing draws nothing), then call its `render()`.

        Imported here, not at the top: every page imports `dashboard.ui.page`, which imports this list.
        """
        importlib.import_module(self.module).render()


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


def streamlit_page(spec: PageSpec) -> st.Page:
    """The `st.Page` of one spec: for `st.navigation` and for `st.page_link` (the Home cards)."""
    return st.Page(spec.render, title=spec.title, icon=spec.icon, url_path=spec.page_url_path, default=spec is HOME)


def streamlit_pages() -> list[st.Page]:
    """`st.Page` objects for `st.navigation`, in menu order; Home is the default page."""
    return [streamlit_page(spec) for spec in PAGES]


def spec_for(current: st.Page) -> PageSpec:
    """The spec of the page `st.navigation` chose (matched on its URL path, which is unique)."""
    for spec in PAGES:
        if (spec.url_path or "") == (current.url_path or ""):
            return spec
    raise LookupError(f"st.navigation returned a page not in navigation.PAGES: {current.url_path!r}")
