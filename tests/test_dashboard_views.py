"""The pages are functions: each `dashboard/views/` module exposes `render()`, importing it draws nothing,
and `st.navigation` registers the callables under the first release's URL paths and titles (shared links).

Runs in Streamlit's AppTest without an endpoint or a model: nothing here needs either.
"""

from __future__ import annotations

import ast
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.ui import navigation

# The URL paths and titles of the first release's file-based pages: links people saved must keep working.
FIRST_RELEASE = [
    ("", "Home"),
    ("Patient_risk", "Patient risk"),
    ("Threshold_explorer", "Threshold explorer"),
    ("ICU_saturation", "ICU saturation"),
    ("Model_card", "Model card"),
    ("Batch_scoring", "Batch scoring"),
    ("Monitoring", "Monitoring"),
]


def _import_every_page() -> None:
    """Import each page module afresh inside a script run; anything drawn at import shows up in the tree."""
    import importlib
    import sys

    from dashboard.ui import navigation

    for spec in navigation.PAGES:
        sys.modules.pop(spec.module, None)
        importlib.import_module(spec.module)


def _register_pages() -> None:
    """What the entry file does with the list, plus a Home card link per page; records what was registered."""
    import streamlit as st

    from dashboard.ui import navigation

    pages = navigation.streamlit_pages()
    st.navigation(pages, position="hidden")
    st.session_state["registered"] = [(page.url_path, page.title, page.icon) for page in pages]
    for spec in navigation.PAGES:
        st.page_link(navigation.streamlit_page(spec), label=spec.title)


def test_importing_a_page_module_draws_nothing() -> None:
    at = AppTest.from_function(_import_every_page, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.main.children and not at.sidebar.children


def test_every_page_module_is_functions_only() -> None:
    """No statement at a page module's top level but imports, constants, functions and classes: a page drawn
    at import (an expression, an `if`, a `with`) would run outside `render()` and outside the complexity check."""
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.ClassDef)
    for spec in navigation.PAGES:
        tree = ast.parse(Path(navigation.VIEWS / spec.script).read_text(encoding="utf-8"))
        body = tree.body[1:] if ast.get_docstring(tree) else tree.body
        stray = [f"line {node.lineno}" for node in body if not isinstance(node, allowed)]
        assert not stray, f"{spec.script}: statements outside a function at {stray}"
        assert any(isinstance(n, ast.FunctionDef) and n.name == "render" for n in body), spec.script


def test_pages_keep_their_url_paths_titles_and_icons() -> None:
    at = AppTest.from_function(_register_pages, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    registered = at.session_state["registered"]
    assert [(url, title) for url, title, _ in registered] == FIRST_RELEASE
    assert [icon for _, _, icon in registered] == [spec.icon for spec in navigation.PAGES]
    assert len(at.get("page_link")) == len(navigation.PAGES)  # every page can be linked to (the Home cards)
