"""Shared building blocks of the dashboard pages.

Every page (including ones added later, e.g. batch scoring and monitoring) starts with::

    from dashboard.ui import page
    ctx = page.setup_page("Title", "Subtitle", needs_model=True)

which applies the theme, draws the header, the synthetic-data banner and the
sidebar (endpoint, health, model version, latency, operating threshold) and
returns a `page.PageContext` with the model artifact and the endpoint client.

Modules:
    settings    where the model directory and endpoint settings come from
    auth        the sign-in gate (Streamlit OpenID Connect; off without [auth] in secrets)
    artifacts   cached, read-only access to the model card and evaluation tables
    endpoint    cached client, health check, scoring with human error messages
    state       values that outlive a page (operating threshold, ICU assumptions, scored patients)
    thresholds  pure maths on the stored threshold table (operating point, presets, net benefit)
    icu         ICU page helpers: inputs, where the ICU need comes from, wording (maths in model.capacity)
    charts      plotly figures in the house style
    theme       palette, CSS, header and banners
    sidebar     the shared sidebar
    page        `setup_page`, the one call each page makes first
"""
