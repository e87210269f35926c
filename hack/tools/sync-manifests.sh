#!/usr/bin/env bash
# Refresh the copies the installers need from their single sources (run after `make crds`, after
# editing manifests/base/rbac.yaml, the aggregated roles, the dashboard or the Argo CD checks).
# kustomize and Helm load nothing outside their own directories, hence copies;
# tests/deploy/test_manifests.py fails when one differs from its source.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
chart=manifests/helm/kubevox

# CRDs: crds/ (generated from the models) -> kustomize base and the chart's crds/.
for f in crds/*.yaml; do
  cp "$f" manifests/base/crds/
  cp "$f" "$chart/crds/"
done
cp manifests/base/crds/kopf-peering-namespaced.yaml "$chart/crds/"
# kopf's ClusterKopfPeering CRD: the CustomResourceDefinition documents of manifests/base/peering.yaml
# (the peering object itself is templates/peering.yaml).
awk 'function flush() { if (doc ~ /kind: CustomResourceDefinition/) { printf "%s%s", sep, doc; sep = "---\n" } doc = "" }
     /^---[ \t]*$/ { flush(); next } { doc = doc $0 "\n" } END { flush() }' \
  manifests/base/peering.yaml > "$chart/crds/clusterkopfpeerings.kopf.dev.yaml"

# Files the chart renders from (so it grants and shows exactly what the base does).
mkdir -p "$chart/files"
cp manifests/base/aggregated-roles.yaml "$chart/files/"
cp manifests/base/worker-admission.yaml "$chart/files/"
cp manifests/monitoring/grafana-dashboard.json "$chart/files/"

# Argo CD: the health checks, inlined into the argocd-cm patch.
{
  cat <<'HEAD'
# Teaches Argo CD the health of VoiceAgents, KnowledgeBases and VoiceAgentTests (Healthy / Progressing /
# Degraded from their conditions). Merge it into argocd-cm:
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file manifests/argocd/argocd-cm-patch.yaml
# Generated from health/kubevox.dev/*/health.lua by hack/tools/sync-manifests.sh; tests check it matches.
data:
HEAD
  for kind in VoiceAgent KnowledgeBase VoiceAgentTest; do
    echo "  resource.customizations.health.kubevox.dev_${kind}: |"
    sed -e 's/^\(.\)/    \1/' "manifests/argocd/health/kubevox.dev/${kind}/health.lua"
  done
} > manifests/argocd/argocd-cm-patch.yaml

# Last, as it is written by the operator work: the operator's ServiceAccount and ClusterRoles.
[[ -f manifests/base/rbac.yaml ]] || { echo "manifests/base/rbac.yaml is missing" >&2; exit 1; }
cp manifests/base/rbac.yaml "$chart/files/"
