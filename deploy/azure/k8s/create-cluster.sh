#!/usr/bin/env bash
# Create the AKS cluster for the scoring endpoint, install the Azure ML extension, attach it.
# Usage (production, HTTPS):
#   RG=rg-risk WS=ws-risk SSL_CNAME=risk-score.example.org CERT=cert.pem KEY=key.pem \
#     bash deploy/azure/k8s/create-cluster.sh
# Usage (dev/test only, plain HTTP, one inference router, one node):
#   RG=rg-risk WS=ws-risk DEV_INSECURE_HTTP=1 NODES=1 bash deploy/azure/k8s/create-cluster.sh
# Why these settings (Microsoft's "Deploy Azure Machine Learning extension on AKS" reference):
# * allowInsecureConnections defaults to False, and then the extension needs sslCname plus the
#   certificate and key (sslCertPemFile/sslKeyPemFile, or a Kubernetes secret named by sslSecret);
# * inferenceRouterHA defaults to True: three azureml-fe replicas on three different nodes, so a
#   cluster with fewer than 3 nodes must set inferenceRouterHA=False.
set -euo pipefail

: "${RG:?set RG to the resource group}"
: "${WS:?set WS to the Azure ML workspace}"
CLUSTER="${CLUSTER:-risk-aks}"
COMPUTE="${COMPUTE:-aks-inference}"      # the name deploy.azure settings call `compute`
VM_SIZE="${VM_SIZE:-Standard_D4s_v3}"    # 4 vCPU / 16 GiB per node
NODES="${NODES:-3}"                      # 3: the inference router's three HA replicas need three nodes

az aks create --resource-group "$RG" --name "$CLUSTER" \
  --node-count "$NODES" --node-vm-size "$VM_SIZE" \
  --enable-managed-identity --generate-ssh-keys

if [[ "${DEV_INSECURE_HTTP:-0}" == "1" ]]; then
  # DEV/TEST ONLY: the endpoint answers over plain HTTP (keys and patient data in clear text on the
  # network). One inference router replica, so it also fits a 1-2 node cluster.
  az k8s-extension create --name azureml --extension-type Microsoft.AzureML.Kubernetes \
    --cluster-type managedClusters --cluster-name "$CLUSTER" --resource-group "$RG" --scope cluster \
    --config enableInference=True inferenceRouterServiceType=LoadBalancer \
      allowInsecureConnections=True inferenceRouterHA=False
else
  : "${SSL_CNAME:?set SSL_CNAME to the host name clients will call, e.g. risk-score.example.org}"
  : "${CERT:?set CERT to the PEM certificate for SSL_CNAME (a CA the clients trust)}"
  : "${KEY:?set KEY to the PEM private key of CERT (no pass phrase)}"
  if (( NODES < 3 )); then
    echo "NODES=$NODES: the inference router's default HA mode needs 3 nodes; use NODES=3" >&2
    exit 2
  fi
  az k8s-extension create --name azureml --extension-type Microsoft.AzureML.Kubernetes \
    --cluster-type managedClusters --cluster-name "$CLUSTER" --resource-group "$RG" --scope cluster \
    --config enableInference=True inferenceRouterServiceType=LoadBalancer sslCname="$SSL_CNAME" \
    --config-protected sslCertPemFile="$CERT" sslKeyPemFile="$KEY"
fi

az ml compute attach --resource-group "$RG" --workspace-name "$WS" --type Kubernetes --name "$COMPUTE" \
  --resource-id "$(az aks show --resource-group "$RG" --name "$CLUSTER" --query id --output tsv)" \
  --identity-type SystemAssigned --namespace azureml

# Optional: the custom instance type with more memory (then instance_type = "riskscoring").
# az aks get-credentials --resource-group "$RG" --name "$CLUSTER"
# kubectl apply -f deploy/azure/k8s/instance-type.yml

echo "Point DNS for ${SSL_CNAME:-<your host>} at the inference router's public IP:"
echo "  az aks get-credentials -g $RG -n $CLUSTER && kubectl get service azureml-fe -n azureml"
