# Install kubevox into an existing cluster, with one namespace for voice agents holding the
# provider and LiveKit credentials.
#
#   export TF_VAR_provider_api_keys='{"deepgram":"...","openai":"...","cartesia":"..."}'
#   export TF_VAR_livekit_api_key=... TF_VAR_livekit_api_secret=...
#   terraform init && terraform apply -var livekit_url=wss://livekit.example.com

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = ">= 3.0.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.25.0"
    }
  }
}

variable "kubeconfig" {
  description = "Path of the kubeconfig for the target cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "Context in the kubeconfig (null: its current context)."
  type        = string
  default     = null
}

variable "provider_api_keys" {
  description = "Provider API keys by name (deepgram, openai, cartesia, ...)."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "livekit_url" {
  description = "LiveKit server URL."
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

provider "kubernetes" {
  config_path    = var.kubeconfig
  config_context = var.kube_context
}

provider "helm" {
  kubernetes = {
    config_path    = var.kubeconfig
    config_context = var.kube_context
  }
}

module "kubevox" {
  source = "../.."
  # From outside this repository:
  # source = "git::https://github.com/kubevox/kubevox.git//terraform?ref=v0.1.0"

  operator_replicas  = 2
  agent_namespaces   = ["voice"]
  provider_api_keys  = var.provider_api_keys
  livekit_url        = var.livekit_url
  livekit_api_key    = var.livekit_api_key
  livekit_api_secret = var.livekit_api_secret
}

output "kubevox" {
  value = {
    namespace            = module.kubevox.namespace
    release_status       = module.kubevox.release_status
    provider_secret_name = module.kubevox.provider_secret_name
    livekit              = module.kubevox.livekit
  }
}
