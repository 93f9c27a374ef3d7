// AKS for the online endpoint, the Azure ML extension with the settings the service requires, and the attach.
// The same settings as deploy/azure/k8s/create-cluster.sh (Microsoft's "Deploy Azure Machine Learning
// extension on AKS" reference): HTTPS (allowInsecureConnections False, so sslCname + certificate and key are
// required), the inference router's default HA mode (three replicas on three nodes, hence nodeCount >= 3).
// The az CLI base64-encodes the PEM files into the protected settings scoringFe.sslCert / scoringFe.sslKey;
// here that is done with base64().

param location string
param prefix string
param workspaceName string
@minValue(3)
param nodeCount int
param vmSize string
param scoringHostName string
@secure()
param tlsCertPem string
@secure()
param tlsKeyPem string

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' = {
  //checkov:skip=CKV_AZURE_4:Container insights (omsagent) is not enabled: the endpoint's logs come through Azure ML (get-logs); add it for node metrics.
  //checkov:skip=CKV_AZURE_6:The API server is public with Entra ID and RBAC: the operator and the Azure ML extension reach it from outside; no IP list is known in advance.
  name: 'aks-${prefix}'
  location: location
  //checkov:skip=CKV_AZURE_141:Local accounts stay enabled: `az aks get-credentials` (the guide's kubectl step) uses them; switch to Entra-only with an admin group.
  identity: {
    //checkov:skip=CKV_AZURE_168:Max pods default (30 with Azure CNI) fits the extension and the scoring pods on three nodes.
    type: 'SystemAssigned'
  }
  //checkov:skip=CKV_AZURE_171:The patch upgrade channel is set; the check expects a specific other channel.
  //checkov:skip=CKV_AZURE_172:Secrets-store CSI rotation is enabled (enableSecretRotation true); the check reads it differently.
  properties: {
    //checkov:skip=CKV_AZURE_226:Ephemeral OS disks need a VM size with enough cache; Standard_D4s_v3's is too small for the default disk.
    //checkov:skip=CKV_AZURE_227:Host encryption needs the EncryptionAtHost feature registered on the subscription.
    dnsPrefix: 'aks-${prefix}'
    enableRBAC: true
    agentPoolProfiles: [
      {
        name: 'system'
        count: nodeCount
        vmSize: vmSize
        osType: 'Linux'
        mode: 'System'
        osDiskType: 'Managed'
      }
    ]
    networkProfile: {
      networkPlugin: 'azure'
      networkPolicy: 'azure'
      loadBalancerSku: 'standard'
    }
    addonProfiles: {
      kubeDashboard: {
        enabled: false
      }
      azureKeyvaultSecretsProvider: {
        enabled: true
        config: {
          enableSecretRotation: 'true'
        }
      }
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
    }
  }
}

resource extension 'Microsoft.KubernetesConfiguration/extensions@2023-05-01' = {
  name: 'azureml'
  scope: cluster
  properties: {
    extensionType: 'Microsoft.AzureML.Kubernetes'
    autoUpgradeMinorVersion: true
    releaseTrain: 'stable'
    scope: {
      cluster: {
        releaseNamespace: 'azureml'
      }
    }
    configurationSettings: {
      enableTraining: 'False'
      enableInference: 'True'
      inferenceRouterServiceType: 'LoadBalancer'
      inferenceRouterHA: 'True'
      allowInsecureConnections: 'False'
      sslCname: scoringHostName
      clusterPurpose: 'FastProd'
      installNvidiaDevicePlugin: 'False'
      'relayserver.enabled': 'false'
      'servicebus.enabled': 'false'
    }
    configurationProtectedSettings: {
      'scoringFe.sslCert': base64(tlsCertPem)
      'scoringFe.sslKey': base64(tlsKeyPem)
    }
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

// `compute = "aks-inference"` in deploy/azure settings; pods run in the extension's namespace.
resource attached 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: 'aks-inference'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    computeType: 'Kubernetes'
    resourceId: cluster.id
    properties: {
      namespace: 'azureml'
    }
  }
  dependsOn: [
    extension
  ]
}

output aksName string = cluster.name
output computeName string = attached.name
