"""The scoring server's settings (azmlinfsrv 1.5.1 + gunicorn), in one place.

`SCORING_SERVER_ENV` is the environment the server process gets: `deploy.local_endpoint`
passes it to the local `azmlinfsrv`, and the Azure online deployment sets the same
variables (`environment_variables`), so both run the same server configuration.

Why these values (measured in tests/test_hardening.py and benchmarks/bench_load.py):

- azmlinfsrv reads `WORKER_COUNT` (gunicorn `-w`, default 1) and `WORKER_TIMEOUT` (gunicorn
  `--timeout`, default 300 s) and puts them on gunicorn's command line. It has no option for
  the worker class, threads or a body-read timeout, but gunicorn itself reads
  `GUNICORN_CMD_ARGS` for every setting not on the command line.
- With the default single *sync* worker, one client that sends headers and then a partial
  body holds the only worker until gunicorn kills it after 300 s ("WORKER TIMEOUT"). With
  `gthread` workers the connection waits on a thread while the worker's other threads and
  the other worker keep serving, and `model/serving/score.py` stops waiting for a body after
  `BODY_READ_TIMEOUT_S` (10 s, answered 408). gunicorn's gthread worker also parks
  connections that send nothing at all after 5 s instead of holding a thread.
- gunicorn has no header-read timeout: a client that sent an *incomplete header block* and stalled
  held a thread until it disconnected, and WORKER_COUNT x threads (8) of them left health checks
  unanswered. `model/serving/score.py`'s init() adds one to its gthread worker
  (`model.serving.request_body.install_header_deadline`): the request line and headers must arrive within
  `RISK_HEADER_READ_TIMEOUT_S` (5 s) of the connection being queued, else it is closed; with 16
  stalled clients a health check is answered within about 3 s in the test's 2 s setting. It works
  the same in Azure (same worker, same script), where the endpoint's front end (azureml-fe / the
  managed endpoint's gateway) also sits in front of the server.
- `SCORING_TIMEOUT_MS` (azmlinfsrv's run() timeout) uses SIGALRM, which works only in a
  worker's main thread; with gthread workers run() executes on pool threads, so it does not
  apply. Scoring is a table lookup (milliseconds), so nothing relies on it.
- Concurrency per instance is WORKER_COUNT x threads = 8 requests; the Azure deployment's
  `max_concurrent_requests_per_instance` should not exceed it.
"""

from __future__ import annotations

WORKER_COUNT = 2
THREADS_PER_WORKER = 4

SCORING_SERVER_ENV: dict[str, str] = {
    "WORKER_COUNT": str(WORKER_COUNT),
    # gunicorn kills a worker whose main loop has not reported for this long; with gthread the main
    # loop reports every second whatever the threads do, so this only catches a truly stuck worker.
    "WORKER_TIMEOUT": "60",
    "GUNICORN_CMD_ARGS": f"--worker-class gthread --threads {THREADS_PER_WORKER} --graceful-timeout 10",
}

# How the local endpoint lays out the model directory: the way Azure ML mounts a registered
# folder model (AZUREML_MODEL_DIR=.../azureml-models/<name>/<version>, the folder inside it).
# azmlinfsrv derives the model id "<name>:<version>" from that path; any other layout makes
# its lookup log a traceback at every start.
LOCAL_MODEL_NAME = "covid19-death-risk"
LOCAL_MODEL_VERSION = "1"
