"""Shared building blocks of the dashboard pages.

The entry file `dashboard/app.py` calls `page.run_app()`, which applies the theme and sign-in,
lets `st.navigation` pick the page from `navigation.PAGES`, draws the sidebar (endpoint, health,
model version, latency, operating threshold), the header and the data banners, then runs the
page. Every page in `dashboard/views/` is a module whose `render()` starts with::

    from dashboard.ui import page
    ctx = page.context()

and gets a `page.PageContext` with the model artifact and the endpoint settings.

Modules:
    settings    where the model directory and endpoint settings come from
    auth        the sign-in gate (Streamlit OpenID Connect; off without [auth] in secrets)
    artifacts   cached, read-only access to the model card and evaluation tables
    endpoint    cached client, health check, scoring with human error messages
    state       values that outlive a page (operating threshold, ICU assumptions, scored patients)
    thresholds  pure maths on the stored threshold table (operating point, presets, net benefit)
    icu         ICU page helpers: inputs, where the ICU need comes from, wording (maths in model.planning.capacity)
    charts      plotly figures in the house style, every page's (a package: style, patient, performance,
                counts, icu, monitoring; pages call `charts.<figure>(...)`)
    theme       palette, CSS, header and banners
    sidebar     the shared sidebar
    navigation  the page list: menu, URL paths, headers, Home cards
    page        `run_app` (the entry file's one call) and `context()` (each page's first call)
"""
