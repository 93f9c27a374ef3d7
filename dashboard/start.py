"""Container start command of the dashboard image: fetch the model if configured, then run Streamlit.

    python -m dashboard.start

With RISK_AZUREML_MODEL set (Azure Container Apps), the registered model version is downloaded
into RISK_MODEL_DIR first (dashboard/model_fetch.py); a failure stops the container with a
one-line reason and exit code 2 (docs/cli.md), so the revision shows unhealthy instead of serving
pages without model tables.
Without it (a mounted folder, or a local `docker run`), Streamlit starts at once. Streamlit then
replaces this process (exec), so it receives the container's signals directly.

It lives in the dashboard, not in deploy/, because the image holds only the package and the
dashboard (the Dockerfile; tests/test_dockerfile.py checks that everything it imports is there).
"""

from __future__ import annotations

import os
import sys

from model.core import exit_codes

STREAMLIT_ARGS = [
    "streamlit",
    "run",
    "dashboard/app.py",
    "--server.address=0.0.0.0",
    "--server.port=8501",
    "--server.headless=true",
]


@exit_codes.guarded
def main() -> int:
    """Fetch the model if configured, then become Streamlit; 2 (one line) when the model cannot be fetched."""
    from dashboard.model_fetch import ModelFetchError, fetch_if_configured

    try:
        fetched = fetch_if_configured()
    except ModelFetchError as exc:
        print(f"dashboard start: error: {exc}", file=sys.stderr, flush=True)
        return exit_codes.BAD_INPUT
    if fetched is not None:
        print(f"dashboard start: model {os.environ['RISK_AZUREML_MODEL']} in {fetched}", flush=True)
    os.execvp(STREAMLIT_ARGS[0], STREAMLIT_ARGS)
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
