// Least-privilege role assignments. The dashboard is internet-facing, so its identity gets only what it
// uses: read registered models and datastores, score the online endpoint, read blobs (model download with
// shared keys off; the Monitoring page's collected data), read its three secrets, pull its image.
// AzureML Data Scientist (the earlier guide's choice) would also let it delete endpoints, regenerate keys
// and read datastore secrets.

param workspaceName string
param storageAccountName string
param keyVaultName string
param registryName string
param dashboardPrincipalId string
param clusterPrincipalId string
param operatorPrincipalId string
param operatorPrincipalType string
param secretNames object
@description('Object ID of the GitHub Actions service principal (empty: no CI roles).')
param ciPrincipalId string = ''

// Built-in role definition IDs (the same in every tenant).
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource endpointKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretNames.endpointKey
}

resource streamlitSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretNames.streamlitSecrets
}

resource authClientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretNames.authClientSecret
}

// What the dashboard does in the workspace, and nothing else (no write, delete, listKeys or listsecrets).
resource dashboardRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'covid19-risk-dashboard-reader')
  properties: {
    roleName: 'COVID-19 risk dashboard (${resourceGroup().name})'
    description: 'Read registered models and datastores, score online endpoints. Nothing that changes the workspace.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.MachineLearningServices/workspaces/read'
          'Microsoft.MachineLearningServices/workspaces/models/read'
          'Microsoft.MachineLearningServices/workspaces/models/versions/read'
          'Microsoft.MachineLearningServices/workspaces/datastores/read'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read'
        ]
        notActions: []
        dataActions: [
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action'
        ]
        notDataActions: []
      }
    ]
  }
}

resource dashboardWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, dashboardPrincipalId, dashboardRole.id)
  scope: workspace
  properties: {
    roleDefinitionId: dashboardRole.id
    principalId: dashboardPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource dashboardBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, dashboardPrincipalId, storageBlobDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: dashboardPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource dashboardEndpointKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(endpointKey.id, dashboardPrincipalId, keyVaultSecretsUser)
  scope: endpointKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: dashboardPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource dashboardStreamlitSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(streamlitSecrets.id, dashboardPrincipalId, keyVaultSecretsUser)
  scope: streamlitSecrets
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: dashboardPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource dashboardAuthSecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(authClientSecret.id, dashboardPrincipalId, keyVaultSecretsUser)
  scope: authClientSecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: dashboardPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource dashboardPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, dashboardPrincipalId, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: dashboardPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The compute cluster reads training data and writes job and batch outputs with its own identity.
resource clusterBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, clusterPrincipalId, storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: clusterPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Owner/Contributor carry no Key Vault data actions: the operator needs this to write the endpoint key.
resource operatorSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, operatorPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// With shared keys off, `python -m deploy.azure register` uploads the model folder with the operator's identity.
resource operatorBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, operatorPrincipalId, storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// GitHub Actions (OIDC federated credential, no stored secret) trains, registers, deploys and monitors:
// it manages the workspace's jobs, models and endpoints, so it gets AzureML Data Scientist on the workspace
// (not the dashboard: that one faces the internet) and uploads with its own identity.
var azureMlDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'

resource ciWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(ciPrincipalId)) {
  name: guid(workspace.id, ciPrincipalId, azureMlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMlDataScientist)
    principalId: ciPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource ciBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(ciPrincipalId)) {
  name: guid(storage.id, ciPrincipalId, storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: ciPrincipalId
    principalType: 'ServicePrincipal'
  }
}
