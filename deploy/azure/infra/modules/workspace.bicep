// Azure ML workspace with its dependencies, and the compute cluster for the training job and batch scoring.
// Storage has shared-key access off: every reader (the dashboard's model download, the Monitoring page,
// jobs) authenticates with Entra ID and needs a Storage Blob Data role (roles.bicep); the workspace's
// system datastores use identity access to match.

param location string
param prefix string
param clusterVmSize string

var suffix = uniqueString(resourceGroup().id)

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${prefix}-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${prefix}-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_43:The name is computed (take of a lower-case prefix and uniqueString), which the check cannot evaluate.
  //checkov:skip=CKV_AZURE_59:Public network access stays on: the walk has no private network; every request still needs Entra ID (shared keys are off).
  name: take(toLower('st${prefix}${suffix}'), 24)
  //checkov:skip=CKV_AZURE_35:Default network action Allow for the same reason (no virtual network in this template).
  location: location
  sku: {
    name: 'Standard_GRS'
  }
  kind: 'StorageV2'
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv-${prefix}-${suffix}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
  }
  //checkov:skip=CKV_AZURE_109:No firewall: Container Apps (consumption) has no fixed outbound address to allow; access is by RBAC only.
  //checkov:skip=CKV_AZURE_189:Public network access stays on for the same reason.
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  //checkov:skip=CKV_AZURE_163:Image scanning is Microsoft Defender for Containers, a subscription plan outside this template.
  //checkov:skip=CKV_AZURE_139:Basic SKU has no network rules; pulls need Entra ID (AcrPull) since the admin user is off.
  name: take('cr${prefix}${suffix}', 50)
  //checkov:skip=CKV_AZURE_166:Quarantine needs the Premium SKU.
  location: location
  //checkov:skip=CKV_AZURE_233:Zone redundancy needs the Premium SKU.
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  name: 'mlw-${prefix}-${suffix}'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: 'COVID-19 death risk'
    storageAccount: storage.id
    keyVault: vault.id
    applicationInsights: insights.id
    containerRegistry: registry.id
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
  }
  //checkov:skip=CKV_AZURE_243:No private endpoint (no virtual network in this template).
}

// Training job and batch deployment (`cluster = "cpu-cluster"` in deploy/azure settings); 0 nodes when idle.
resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: 'cpu-cluster'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    computeType: 'AmlCompute'
    properties: {
      vmSize: clusterVmSize
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: 2
        nodeIdleTimeBeforeScaleDown: 'PT120S'
      }
      remoteLoginPortPublicAccess: 'Disabled'
    }
  }
}

output workspaceName string = workspace.name
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output keyVaultUri string = vault.properties.vaultUri
output registryName string = registry.name
output registryServer string = registry.properties.loginServer
output logAnalyticsName string = logs.name
output clusterPrincipalId string = cluster.identity.principalId
