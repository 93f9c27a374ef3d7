#!/usr/bin/env bash
# The gated rollout GitHub Actions runs after training (release.yml) and after recalibration (monitor.yml):
#   gate -> register -> blue/green deploy with canary checks -> smoke test -> keep, or roll back.
# Usage: bash deploy/azure/ci/rollout.sh MODEL_DIR
# Needs: `az login` (azure/login with OIDC), AZURE_SUBSCRIPTION_ID / AZURE_RESOURCE_GROUP / AZUREML_WORKSPACE_NAME,
# and DASHBOARD_APP (the Container App's name) to point the dashboard at the new model version.
# Exit codes: 0 released; 1 gate refused (nothing changed); 2 usage; 3 rollout failed and was rolled back.
set -euo pipefail

MODEL_DIR="${1:?usage: rollout.sh MODEL_DIR (a model artifact folder with model_card.json)}"
SETTINGS="${SETTINGS:-deploy/azure/settings.example.toml}"
PY="${PYTHON:-python}"
ENDPOINT="$("$PY" -c 'import sys; from deploy.azure.config import load_settings; from pathlib import Path; print(load_settings(Path(sys.argv[1])).endpoint_name)' "$SETTINGS")"

# 1. Gate on the card's figures against the serving model's (deploy/azure/gate.py). Nothing is registered on failure.
if ! "$PY" -m deploy.azure gate --settings "$SETTINGS" --model-dir "$MODEL_DIR"; then
  echo "::error::the release gate refused $MODEL_DIR (see the reasons above); nothing was deployed"
  exit 1
fi

# 2. Register; Azure numbers the version.
VERSION="$("$PY" -m deploy.azure register --settings "$SETTINGS" --model-dir "$MODEL_DIR" \
  | sed -n 's/^registered model [^:]*:\([^ ]*\) .*/\1/p')"
EXPECT="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_version"])' "$MODEL_DIR/model_card.json")"

# 3. Blue/green with canary checks at every traffic step; a failed check restores traffic and exits non-zero.
#    The previous slot is kept at 0% until the smoke test has passed, so step 4 can still go back to it.
LOG="$(mktemp)"
if ! "$PY" -m deploy.azure deploy --settings "$SETTINGS" --model-version "$VERSION" --keep-previous | tee "$LOG"; then
  echo "::error::canary checks failed; traffic was restored to the previous deployment"
  exit 3
fi
NEW="$(sed -n 's/^deployed \([^ ]*\) (model .*/\1/p' "$LOG")"
PREVIOUS="$(sed -n 's/^deployed .*; previous: \(.*\)$/\1/p' "$LOG")"

# 4. Smoke test through the endpoint's traffic split: every answer must come from the new model version.
if ! "$PY" -m deploy.azure smoke --settings "$SETTINGS" --expect-model-version "$EXPECT"; then
  if [[ "$PREVIOUS" != "-" ]]; then
    OLD="${PREVIOUS%%,*}"
    az ml online-endpoint update -n "$ENDPOINT" --traffic "$OLD=100 $NEW=0" >/dev/null
    "$PY" -m deploy.azure monitor --settings "$SETTINGS"   # the schedule follows the deployment serving 100% again
  fi
  echo "::error::smoke test failed; traffic is back on ${OLD:-nothing} (the new deployment $NEW stays at 0% for its logs)"
  exit 3
fi

# 5. Released: retire the previous slot and point the dashboard at the new model's tables.
if [[ "$PREVIOUS" != "-" ]]; then
  for OLD in ${PREVIOUS//,/ }; do
    "$PY" -m deploy.azure teardown --settings "$SETTINGS" --deployment "$OLD" --yes
  done
fi
if [[ -n "${DASHBOARD_APP:-}" ]]; then
  az containerapp update -n "$DASHBOARD_APP" -g "$AZURE_RESOURCE_GROUP" \
    --set-env-vars "RISK_AZUREML_MODEL=covid19-death-risk:$VERSION" >/dev/null
fi
echo "released model version $VERSION ($EXPECT) on deployment $NEW"
