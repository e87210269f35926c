# --- The kubevox installation --------------------------------------------------------------------

variable "namespace" {
  description = "Namespace of the kubevox operator."
  type        = string
  default     = "kubevox-system"
}

variable "create_namespace" {
  description = "Create var.namespace (labelled for the restricted Pod Security Standard)."
  type        = bool
  default     = true
}

variable "release_name" {
  description = "Name of the Helm release."
  type        = string
  default     = "kubevox"
}

variable "chart" {
  description = "The kubevox chart: a path, or a chart name in var.chart_repository. Default: manifests/helm/kubevox next to this module (present when the module comes from this repository by a relative path or git::...//terraform)."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository (https:// or oci://) holding var.chart; null for a local path."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version when installing from var.chart_repository."
  type        = string
  default     = null
}

variable "operator_image" {
  description = "Operator image; tag defaults to the chart's appVersion, a digest (sha256:...) wins over the tag."
  type = object({
    repository = optional(string, "ghcr.io/kubevox/operator")
    tag        = optional(string, "")
    digest     = optional(string, "")
  })
  default = {}
}

variable "runtime_image" {
  description = "Default worker image for VoiceAgents and ingestion Jobs that name none."
  type = object({
    repository = optional(string, "ghcr.io/kubevox/agent-runtime")
    tag        = optional(string, "")
    digest     = optional(string, "")
  })
  default = {}
}

variable "operator_replicas" {
  description = "Operator replicas: 1, or 2 for a warm standby (kopf peering keeps one active)."
  type        = number
  default     = 1

  validation {
    condition     = var.operator_replicas >= 1 && var.operator_replicas <= 3
    error_message = "operator_replicas must be 1, 2 or 3."
  }
}

variable "watch_namespaces" {
  description = "Namespaces the operator watches; empty watches all namespaces. When set, the operator's Secret reads and workload writes are granted in these namespaces only (a RoleBinding each), so they must be exact names, not globs."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for n in var.watch_namespaces : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", n))])
    error_message = "watch_namespaces must be exact namespace names (no globs): the operator is granted its rights by a RoleBinding in each."
  }
}

variable "monitoring" {
  description = "Prometheus Operator ServiceMonitor for the operator, prometheus-adapter rules ConfigMap (in adapter_namespace) and Grafana dashboard ConfigMap. Needs the monitoring.coreos.com CRDs."
  type = object({
    enabled           = optional(bool, false)
    adapter_namespace = optional(string, "monitoring")
  })
  default = {}
}

variable "helm_values" {
  description = "Extra values for the chart, as YAML documents (merged after the module's own)."
  type        = list(string)
  default     = []
}

variable "wait" {
  description = "Wait for the operator Deployment to become ready."
  type        = bool
  default     = true
}

variable "timeout_seconds" {
  description = "Helm operation timeout."
  type        = number
  default     = 300
}

# --- Where VoiceAgents run, and their credentials ---------------------------------------------

variable "agent_namespaces" {
  description = "Namespaces for VoiceAgents and KnowledgeBases; each gets the credential Secrets below."
  type        = list(string)
  default     = []
}

variable "create_agent_namespaces" {
  description = "Create var.agent_namespaces (otherwise they must exist)."
  type        = bool
  default     = true
}

variable "provider_api_keys" {
  description = "Speech and language provider API keys by name (e.g. deepgram, openai, cartesia), stored as the keys of the Secret var.provider_secret_name in every agent namespace; VoiceAgents reference them with credentials.secretKeyRef."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "provider_secret_name" {
  description = "Name of the provider credentials Secret."
  type        = string
  default     = "voice-providers"
}

variable "livekit_url" {
  description = "LiveKit server URL (wss://...) for the VoiceAgents' spec.livekit.url; null skips the LiveKit Secret."
  type        = string
  default     = null
}

variable "livekit_api_key" {
  description = "LiveKit API key."
  type        = string
  default     = null
  sensitive   = true
}

variable "livekit_api_secret" {
  description = "LiveKit API secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "livekit_secret_name" {
  description = "Name of the LiveKit credentials Secret (keys apiKey and apiSecret, the VoiceAgent defaults)."
  type        = string
  default     = "livekit-credentials"
}
