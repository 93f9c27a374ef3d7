"""What every page shares, run once per script run by the entry file before the current page.

`run_app()` (called by `dashboard/app.py`) sets the page config, theme and sign-in, resolves the page with
`st.navigation`, draws the sidebar, header and data banners, then runs the page (its module's `render()`).
A page asks for what it needs with `context()`. Before and after the page the shared state is written into
the address, so a link copied on any page, after any number of menu switches, opens the same view.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard.ui import auth, endpoint, navigation, settings, share, state, text, theme, thresholds
from dashboard.ui.artifacts import ModelArtifact, ModelMissing, load_artifact
from dashboard.ui.sidebar import draw_sidebar
from model.serving.client import EndpointConfig, EndpointError

_CONTEXT_KEY = "page.context"  # this run's PageContext (per session; replaced on every run)


@dataclass(frozen=True)
class PageContext:
    """What a page needs: the model artifact (None if missing) and the endpoint settings (None if invalid)."""

    model: ModelArtifact | None
    model_error: str | None
    endpoint: EndpointConfig | None
    endpoint_error: str | None

    def threshold_table(self) -> pd.DataFrame:
        """The model's stored threshold table, sorted for lookups; stops the page with a message if unusable."""
        assert self.model is not None  # run_app stopped the page otherwise
        try:
            return thresholds.prepare_table(self.model.table("thresholds"))
        except thresholds.ThresholdTableError as exc:
            st.error(str(exc))
            st.stop()
            raise  # unreachable: st.stop() ends the script run


def run_app() -> None:
    """Set up what every page shares, then run the page the URL asks for."""
    # The tab icon is a local file, set *before* st.navigation: without a page icon the browser takes the
    # current page's Material icon for the tab and fetches it from an internet font host (which would
    # learn which page a clinician opens, and fails offline) before a later set_page_config replaces it.
    st.set_page_config(page_icon=str(theme.FAVICON), layout="wide")
    # Signed out, the menu is hidden too: only the sign-in screen shows, whatever the URL.
    current = st.navigation(navigation.streamlit_pages(), position="hidden" if auth.sign_in_pending() else "sidebar")
    spec = navigation.spec_for(current)
    st.set_page_config(page_title=f"{spec.title} · {theme.APP_NAME}")
    theme.apply_theme()
    auth.require_sign_in()  # returns when sign-in is off or done; otherwise shows only the sign-in screen
    try:
        st.session_state[_CONTEXT_KEY] = _shared_context(spec)
        current.run()
    finally:  # again after the page, for values the page itself changed (a page that stops has sent its own)
        state.sync_url()


def context() -> PageContext:
    """This run's shared context; pages run only through the entry file (`streamlit run dashboard/app.py`)."""
    ctx = st.session_state.get(_CONTEXT_KEY)
    if not isinstance(ctx, PageContext):
        raise RuntimeError("dashboard pages run through the entry file: `streamlit run dashboard/app.py`")
    return ctx


def _shared_context(spec: navigation.PageSpec) -> PageContext:
    """Model, endpoint settings, sidebar, header and banners; stops when the page needs a missing model."""
    url_problems = [problem for problem in (state.threshold_from_url(), state.icu_from_url()) if problem]
    model, model_error = None, None
    try:
        model = load_artifact(settings.model_dir())
    except ModelMissing as exc:
        model_error = str(exc)
    config, config_error = None, None
    try:
        config = settings.endpoint_config()
    except EndpointError as exc:  # EndpointConfigError explains bad settings; it never includes the key
        config_error = str(exc)
    draw_sidebar(config, model, config_error)  # also settles the threshold (the URL's, or the default)
    state.sync_url()  # now, before the page: after st.stop() nothing reaches the browser any more
    with st.sidebar:
        share.copy_link_button()
    theme.header(theme.APP_NAME if spec is navigation.HOME else spec.title, spec.subtitle)
    for problem in url_problems:
        st.warning(text.md(problem), icon=":material/link_off:")  # quotes the URL: literal text only
    if config is not None:
        endpoint.watch_while_down(config)
    if model is not None:
        theme.data_banner(model.card)
    elif model_error:
        st.error(f"**No model to show.** {model_error}", icon=":material/folder_off:")  # our words, the set path
        if spec.needs_model:
            st.stop()
    return PageContext(model=model, model_error=model_error, endpoint=config, endpoint_error=config_error)
