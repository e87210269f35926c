locals {
  chart = coalesce(var.chart, "${path.module}/../manifests/helm/kubevox")

  livekit_enabled = var.livekit_url != null

  values = {
    image           = var.operator_image
    runtimeImage    = var.runtime_image
    replicas        = var.operator_replicas
    watchNamespaces = var.watch_namespaces
    metrics = {
      serviceMonitor = { enabled = var.monitoring.enabled }
    }
    prometheusAdapter = {
      rulesConfigMap = {
        enabled   = var.monitoring.enabled
        namespace = var.monitoring.adapter_namespace
      }
    }
    grafana = {
      dashboard = { enabled = var.monitoring.enabled }
    }
  }
}

resource "kubernetes_namespace_v1" "kubevox" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of"                  = "kubevox"
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
      "pod-security.kubernetes.io/warn"            = "restricted"
    }
  }
}

resource "helm_release" "kubevox" {
  name       = var.release_name
  namespace  = var.namespace
  chart      = local.chart
  repository = var.chart_repository
  version    = var.chart_version

  values  = concat([yamlencode(local.values)], var.helm_values)
  wait    = var.wait
  timeout = var.timeout_seconds
  lifecycle {
    precondition {
      condition     = var.chart_repository != null || fileexists("${local.chart}/Chart.yaml")
      error_message = "No chart at ${local.chart}: set var.chart (and var.chart_repository), or use this module from the repository (a relative path, or git::...//terraform)."
    }
  }

  # The chart's crds/ are installed on first install; upgrades of CRDs are `kubectl apply`
  # (Helm never upgrades crds/), see docs/install.md.
  skip_crds = false

  depends_on = [kubernetes_namespace_v1.kubevox]
}

resource "kubernetes_namespace_v1" "agents" {
  for_each = var.create_agent_namespaces ? toset(var.agent_namespaces) : toset([])

  metadata {
    name = each.value
    labels = {
      "app.kubernetes.io/part-of"          = "kubevox"
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

# Provider API keys, one Secret per agent namespace. Values come from sensitive variables and
# never appear in plan output.
resource "kubernetes_secret_v1" "providers" {
  for_each = length(var.provider_api_keys) > 0 ? toset(var.agent_namespaces) : toset([])

  metadata {
    name      = var.provider_secret_name
    namespace = each.value
    labels = {
      "app.kubernetes.io/part-of"    = "kubevox"
      "app.kubernetes.io/managed-by" = "terraform"
    }
  }
  type = "Opaque"
  data = var.provider_api_keys

  depends_on = [kubernetes_namespace_v1.agents]
}

resource "kubernetes_secret_v1" "livekit" {
  for_each = local.livekit_enabled ? toset(var.agent_namespaces) : toset([])

  metadata {
    name      = var.livekit_secret_name
    namespace = each.value
    labels = {
      "app.kubernetes.io/part-of"    = "kubevox"
      "app.kubernetes.io/managed-by" = "terraform"
    }
    annotations = {
      "kubevox.dev/livekit-url" = var.livekit_url
    }
  }
  type = "Opaque"
  data = {
    apiKey    = var.livekit_api_key
    apiSecret = var.livekit_api_secret
  }

  lifecycle {
    precondition {
      condition     = var.livekit_api_key != null && var.livekit_api_secret != null
      error_message = "livekit_url is set: set livekit_api_key and livekit_api_secret too."
    }
  }

  depends_on = [kubernetes_namespace_v1.agents]
}
