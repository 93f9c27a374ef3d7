// The dashboard's Container App, behind Container Apps built-in authentication (Easy Auth).
//
// Why Easy Auth in front of Streamlit's own sign-in (st.login): st.login guards the pages Streamlit renders,
// not Streamlit's HTTP routes. A signed-out client could still PUT /_stcore/upload_file/<session>/<id>
// (filling the replica's memory) and fetch /media/<hash> download links while a clinician's session lives.
// Easy Auth answers every request without a valid sign-in before it reaches the container, so those
// routes are unreachable signed out. st.login stays: it gives the app the user's name and its own sign-out.
// Health probes go to the container directly, not through the ingress, so they need no exclusion.
// `python -m deploy.azure dashboard` + `az containerapp update --yaml` later set the real image, model and
// endpoint; its YAML keeps the Easy Auth secret below (deploy/azure/containerapp.py).

param location string
param appName string
param environmentId string
param identityId string
param keyVaultUri string
param registryServer string
param secretNames object
param clientId string
param image string

var authSecret = 'microsoft-provider-authentication-secret'

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    managedEnvironmentId: environmentId
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8501
        transport: 'auto'
        allowInsecure: false
        stickySessions: {
          affinity: 'sticky'
        }
      }
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      secrets: [
        {
          name: 'endpoint-key'
          keyVaultUrl: '${keyVaultUri}secrets/${secretNames.endpointKey}'
          identity: identityId
        }
        {
          name: 'streamlit-secrets'
          keyVaultUrl: '${keyVaultUri}secrets/${secretNames.streamlitSecrets}'
          identity: identityId
        }
        {
          name: authSecret
          keyVaultUrl: '${keyVaultUri}secrets/${secretNames.authClientSecret}'
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'dashboard'
          image: image
          resources: {
            cpu: json('1.0')
            memory: '2Gi'
          }
        }
      ]
      scale: {
        minReplicas: 1
        maxReplicas: 2
      }
    }
  }
}

resource auth 'Microsoft.App/containerApps/authConfigs@2024-03-01' = {
  parent: app
  name: 'current'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          clientSecretSettingName: authSecret
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}'
          ]
        }
      }
    }
    login: {
      preserveUrlFragmentsForLogins: false
    }
  }
}

output url string = 'https://${app.properties.configuration.ingress.fqdn}'
