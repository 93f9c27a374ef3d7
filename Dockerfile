# Dashboard image: the Streamlit app that calls the risk endpoint (local azmlinfsrv or Azure ML).
# The model itself is NOT served from here: scoring runs on the Azure ML endpoint (deploy/azure/).
# Build:  docker build -t covid-risk-dashboard .
# Run:    docker run -p 8501:8501 -v "$PWD/artifacts/model:/app/artifacts/model:ro" \
#           -e RISK_ENDPOINT_URL=https://<endpoint>/score \
#           -e RISK_ENDPOINT_AUTH=key -e RISK_ENDPOINT_KEY=<key> covid-risk-dashboard
# The mounted model directory supplies the model card and evaluation tables the pages read
# (the estimator in it is not loaded here, except by the Monitoring page). In Azure Container Apps
# nothing is mounted: RISK_AZUREML_MODEL names the registered version and the start command
# downloads it with the app's managed identity (deploy/azure/model_fetch.py, docs/azure.md).
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

# model/ is imported by the dashboard (schema, artifact/table readers); no estimator is baked in.
COPY model/ ./model/
COPY dashboard/ ./dashboard/
COPY assets/ ./assets/
# deploy/ for the start command (model fetch in Azure); it holds no secret (config.json is ignored).
COPY deploy/ ./deploy/
COPY .streamlit/config.toml ./.streamlit/config.toml

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
CMD ["python", "-m", "deploy.azure.dashboard_start"]
