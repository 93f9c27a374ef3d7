"""The dashboard's one entry file: `streamlit run dashboard/app.py` (from the repo root).

Page config, theme, sign-in and the sidebar happen here once per run (`page.run_app`); the pages live in
`dashboard/views/` and are listed only in `dashboard/ui/navigation.py`. The project is installed
(`pip install -e .`, done by `make run` and `make test`), so no path set-up is needed here.
"""

from dashboard.ui import page

page.run_app()
