"""The dashboard's one entry file: `streamlit run dashboard/app.py` (from the repo root).

Path setup, page config, theme, sign-in and the sidebar happen here once per run (`page.run_app`);
the pages live in `dashboard/views/` and are listed only in `dashboard/ui/navigation.py`.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])  # `streamlit run` puts only the script's folder on sys.path
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from dashboard.ui import page  # noqa: E402

page.run_app()
