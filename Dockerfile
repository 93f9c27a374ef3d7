# Dashboard image: the Streamlit app that calls the risk endpoint (local azmlinfsrv or Azure ML).
# The model itself is NOT served from here: scoring runs on the Azure ML endpoint (deploy/azure/).
# Build:  docker build -t covid-risk-dashboard .
# Run:    docker run -p 8501:8501 -v "$PWD/artifacts/model:/app/artifacts/model:ro" \
#           -e RISK_ENDPOINT_URL=https://<endpoint>/score \
#           -e RISK_ENDPOINT_AUTH=key -e RISK_ENDPOINT_KEY=<key> covid-risk-dashboard
# The mounted model directory supplies the model card and evaluation tables the pages read
# (the estimator in it is not loaded here, except by the Monitoring page). In Azure Container Apps
# nothing is mounted: RISK_AZUREML_MODEL names the registered version and the start command
# downloads it with the app's managed identity (dashboard/model_fetch.py, docs/azure.md).
# Sign-in ([auth]) and keys come from the platform at run time (STREAMLIT_SECRETS_FILES, secretRef).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first so code edits do not invalidate the pip layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# What the dashboard runs and reads, nothing else: the package (model/: schema, artifact and table
# readers, the endpoint client; no estimator is baked in), the pages with their start command and
# model fetch (dashboard/), the images and stylesheet (assets/) and Streamlit's settings (only
# config.toml: no secrets file). Not deploy/: tests/test_dockerfile.py imports everything the
# dashboard imports from a copy of exactly these folders.
COPY pyproject.toml ./
COPY model/ ./model/
COPY dashboard/ ./dashboard/
COPY assets/ ./assets/
COPY .streamlit/config.toml ./.streamlit/config.toml
# Installed as `make` installs it (editable, no dependencies: requirements.txt pinned them above), so
# `import model` / `import dashboard` resolve to /app, where assets/ and .streamlit/ sit beside the code.
RUN pip install --no-deps -e .

RUN useradd --create-home --uid 10001 appuser && chown -R appuser /app
USER appuser

# Endpoint settings come from the environment at run time (model.serving.client.EndpointConfig);
# only non-secret defaults here. RISK_ENDPOINT_KEY is passed with -e / a secret store, never baked.
ENV RISK_MODEL_DIR=/app/artifacts/model \
    RISK_ENDPOINT_URL=http://127.0.0.1:5001/score \
    RISK_ENDPOINT_AUTH=none \
    RISK_ENDPOINT_TIMEOUT=10

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"

# Fetches the model when RISK_AZUREML_MODEL is set, then execs
# streamlit run dashboard/app.py --server.address=0.0.0.0 --server.port=8501 --server.headless=true
CMD ["python", "-m", "dashboard.start"]
