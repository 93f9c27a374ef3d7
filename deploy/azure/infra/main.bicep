// COVID-19 death-risk service: everything Azure needs, in one resource group, from an empty subscription.
//   az deployment group create -g $RG -f deploy/azure/infra/main.bicep -p @"$PARAMS"   (docs/azure.md)
// What it creates (each module says why its settings are what they are):
//   workspace.bicep  Azure ML workspace + its storage (no shared keys), Key Vault (RBAC), Application Insights,
//                    Log Analytics, container registry; the cpu-cluster for training and batch
//   aks.bicep        AKS (3 x Standard_D4s_v3), the Azure ML extension over HTTPS with the HA inference router,
//                    attached to the workspace as compute `aks-inference`
//   appenv.bicep     the Container Apps environment (logs to the workspace's Log Analytics)
//   secrets.bicep    the Key Vault secrets the dashboard reads (sign-in secrets; endpoint key placeholder)
//   dashboard.bicep  the dashboard app behind Microsoft Entra sign-in (Easy Auth) with its own identity
//   roles.bicep      least-privilege role assignments (custom role for the dashboard; no AzureML Data Scientist)
// Parameters that are secrets are @secure(): they are not logged in the deployment history.

targetScope = 'resourceGroup'

@description('Region for every resource (needs quota: 12 DSv3 vCPUs for AKS, 8 DSv2 vCPUs for the cpu-cluster).')
param location string = resourceGroup().location

@description('Short lower-case prefix for resource names (3-10 letters/digits).')
@minLength(3)
@maxLength(10)
param prefix string = 'covrisk'

@description('Object ID of the operator running the guide (az ad signed-in-user show --query id -o tsv).')
param operatorPrincipalId string

@description('Principal type of the operator: User for a person, ServicePrincipal for a CI identity.')
@allowed([
  'User'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Object ID of the GitHub Actions service principal with the OIDC federated credential (empty: none).')
param ciPrincipalId string = ''

@description('Host name clients call the scoring endpoint on, e.g. risk-score.example.org (its DNS record points at the AKS inference router).')
param scoringHostName string

@description('PEM certificate (public CA, full chain) for scoringHostName.')
@secure()
param scoringTlsCertPem string

@description('PEM private key of that certificate, unencrypted.')
@secure()
param scoringTlsKeyPem string

@description('AKS nodes: 3, because the inference router runs three HA replicas on three nodes.')
@minValue(3)
param aksNodeCount int = 3

@description('AKS node size (4 vCPU / 16 GiB).')
param aksVmSize string = 'Standard_D4s_v3'

@description('Compute cluster size for the training job and the batch deployment.')
param clusterVmSize string = 'Standard_DS3_v2'

@description('Application (client) ID of the dashboard\'s Entra ID app registration.')
param dashboardClientId string

@description('Client secret of that app registration (expires: renew it before the date az printed).')
@secure()
param dashboardClientSecret string

@description('Random 64 hex characters signing Streamlit\'s sign-in cookie (openssl rand -hex 32).')
@secure()
param streamlitCookieSecret string

@description('Dashboard image; the default is a placeholder until `az acr build` has pushed the real one.')
param image string = 'mcr.microsoft.com/k8se/quickstart:latest'

// Key Vault secret names; deploy/azure/containerapp.py (DashboardSettings) uses the same ones.
var secretNames = {
  endpointKey: 'covid19-endpoint-key'
  streamlitSecrets: 'covid19-dashboard-streamlit-secrets'
  authClientSecret: 'covid19-dashboard-auth-client-secret'
}
var dashboardAppName = 'covid19-risk-dashboard'

// The dashboard's identity exists before its role assignments, and those before the app that uses them.
resource dashboardIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-dashboard'
  location: location
}

module workspace 'modules/workspace.bicep' = {
  name: 'workspace'
  params: {
    location: location
    prefix: prefix
    clusterVmSize: clusterVmSize
  }
}

module aks 'modules/aks.bicep' = {
  name: 'aks'
  params: {
    location: location
    prefix: prefix
    workspaceName: workspace.outputs.workspaceName
    nodeCount: aksNodeCount
    vmSize: aksVmSize
    scoringHostName: scoringHostName
    tlsCertPem: scoringTlsCertPem
    tlsKeyPem: scoringTlsKeyPem
  }
}

module appEnvironment 'modules/appenv.bicep' = {
  name: 'appenv'
  params: {
    location: location
    prefix: prefix
    logAnalyticsName: workspace.outputs.logAnalyticsName
  }
}

module secrets 'modules/secrets.bicep' = {
  name: 'secrets'
  params: {
    keyVaultName: workspace.outputs.keyVaultName
    names: secretNames
    appUrl: 'https://${dashboardAppName}.${appEnvironment.outputs.defaultDomain}'
    clientId: dashboardClientId
    clientSecret: dashboardClientSecret
    cookieSecret: streamlitCookieSecret
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    workspaceName: workspace.outputs.workspaceName
    storageAccountName: workspace.outputs.storageAccountName
    keyVaultName: workspace.outputs.keyVaultName
    registryName: workspace.outputs.registryName
    dashboardPrincipalId: dashboardIdentity.properties.principalId
    clusterPrincipalId: workspace.outputs.clusterPrincipalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    ciPrincipalId: ciPrincipalId
    secretNames: secretNames
  }
  dependsOn: [
    secrets
  ]
}

module dashboard 'modules/dashboard.bicep' = {
  name: 'dashboard'
  params: {
    location: location
    appName: dashboardAppName
    environmentId: appEnvironment.outputs.environmentId
    identityId: dashboardIdentity.id
    keyVaultUri: workspace.outputs.keyVaultUri
    registryServer: workspace.outputs.registryServer
    secretNames: secretNames
    clientId: dashboardClientId
    image: image
  }
  dependsOn: [
    roles
  ]
}

output workspaceName string = workspace.outputs.workspaceName
output keyVaultName string = workspace.outputs.keyVaultName
output keyVaultUri string = workspace.outputs.keyVaultUri
output storageAccountName string = workspace.outputs.storageAccountName
output registryName string = workspace.outputs.registryName
output registryServer string = workspace.outputs.registryServer
output aksName string = aks.outputs.aksName
output kubernetesCompute string = aks.outputs.computeName
output dashboardUrl string = dashboard.outputs.url
output dashboardAppName string = dashboardAppName
output dashboardEnvironmentId string = appEnvironment.outputs.environmentId
output dashboardIdentityId string = dashboardIdentity.id
output dashboardIdentityClientId string = dashboardIdentity.properties.clientId
output endpointKeySecretName string = secretNames.endpointKey
