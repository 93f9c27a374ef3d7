"""`setup_page`: the one call every page makes first, so all pages look and behave alike."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard.client import EndpointConfig, EndpointError
from dashboard.ui import auth, settings, state, theme, thresholds
from dashboard.ui.artifacts import ModelArtifact, ModelMissing, load_artifact
from dashboard.ui.sidebar import Sidebar


@dataclass(frozen=True)
class PageContext:
    """What a page needs: the model artifact (None if missing) and the endpoint settings (None if invalid)."""

    model: ModelArtifact | None
    model_error: str | None
    endpoint: EndpointConfig | None
    endpoint_error: str | None
    sidebar: Sidebar

    def refresh_sidebar(self) -> None:
        """Redraw the sidebar after the page changed a shared value (threshold, latency)."""
        self.sidebar.refresh()

    def threshold_table(self) -> pd.DataFrame:
        """The model's stored threshold table, sorted for lookups; stops the page with a message if unusable."""
        assert self.model is not None  # setup_page stopped the page otherwise
        try:
            return thresholds.prepare_table(self.model.table("thresholds"))
        except thresholds.ThresholdTableError as exc:
            st.error(str(exc))
            st.stop()
            raise  # unreachable: st.stop() ends the script run


def setup_page(title: str, subtitle: str, *, needs_model: bool = True) -> PageContext:
    """Theme, header, synthetic banner and sidebar; stops the page when it needs a model that is missing."""
    # The favicon is a local file: a Material icon name would make the browser fetch it from the internet.
    st.set_page_config(page_title=f"{title} · {theme.APP_NAME}", page_icon=str(theme.FAVICON), layout="wide")
    theme.apply_theme()
    auth.require_sign_in()  # returns when sign-in is off or done; otherwise shows only the sign-in screen
    url_problem = state.threshold_from_url()
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
    bar = Sidebar(config, model, config_error)
    theme.header(title, subtitle)
    if url_problem:
        st.warning(url_problem, icon=":material/link_off:")
    if model is not None:
        theme.data_banner(model.card)
    elif model_error:
        st.error(f"**No model to show.** {model_error}", icon=":material/folder_off:")
        if needs_model:
            st.stop()
    return PageContext(model=model, model_error=model_error, endpoint=config, endpoint_error=config_error, sidebar=bar)
