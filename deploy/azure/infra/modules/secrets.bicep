// The Key Vault secrets the dashboard reads, written here so no secret passes through a file on the
// operator's disk: the Entra client secret (Easy Auth), Streamlit's secrets.toml with [auth] (st.login),
// and a placeholder for the endpoint key, replaced with `az keyvault secret set` once the endpoint
// exists (the placeholder lets the role assignment be scoped to this one secret and the app start).

param keyVaultName string
param names object
param appUrl string
param clientId string
@secure()
param clientSecret string
@secure()
param cookieSecret string

var metadataUrl = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0/.well-known/openid-configuration'
var streamlitSecrets = '[auth]\nredirect_uri = "${appUrl}/oauth2callback"\ncookie_secret = "${cookieSecret}"\nclient_id = "${clientId}"\nclient_secret = "${clientSecret}"\nserver_metadata_url = "${metadataUrl}"\n'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource authClientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: names.authClientSecret
  properties: {
    value: clientSecret
    contentType: 'text/plain'
  }
  //checkov:skip=CKV_AZURE_41:The expiry is the app registration's (az ad app credential reset --end-date); docs/azure.md says when to renew both.
}

resource streamlit 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: names.streamlitSecrets
  properties: {
    value: streamlitSecrets
    contentType: 'application/toml'
  }
  //checkov:skip=CKV_AZURE_41:Holds the same client secret; renewed with it (docs/azure.md).
}

resource endpointKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: names.endpointKey
  properties: {
    value: 'replace-me-with-the-endpoint-key'
    contentType: 'text/plain'
  }
  //checkov:skip=CKV_AZURE_41:Endpoint keys do not expire; rotate with `az ml online-endpoint regenerate-keys` (docs/azure.md).
}
