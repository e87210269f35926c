output "namespace" {
  description = "Namespace of the kubevox operator."
  value       = helm_release.kubevox.namespace
}

output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.kubevox.name
}

output "release_status" {
  description = "Status of the Helm release (deployed, failed, ...)."
  value       = helm_release.kubevox.status
}

output "chart_version" {
  description = "Version of the kubevox chart the release runs."
  value       = helm_release.kubevox.version
}

output "agent_namespaces" {
  description = "Namespaces prepared for VoiceAgents."
  value       = var.agent_namespaces
}

output "provider_secret_name" {
  description = "Secret with the provider API keys in each agent namespace (null when none were given); reference it as credentials.secretKeyRef.name."
  value       = length(var.provider_api_keys) > 0 ? var.provider_secret_name : null
}

output "provider_secret_keys" {
  description = "Keys of the provider Secret (the names, never the values)."
  value       = sort(nonsensitive(keys(var.provider_api_keys)))
}

output "livekit" {
  description = "spec.livekit for VoiceAgents in the agent namespaces (null when LiveKit is not configured)."
  value = var.livekit_url == null ? null : {
    url                  = var.livekit_url
    credentialsSecretRef = { name = var.livekit_secret_name }
  }
}
