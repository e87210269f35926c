{{/* Labels every object of the release carries. */}}
{{- define "kubevox.labels" -}}
app.kubernetes.io/name: kubevox
app.kubernetes.io/part-of: kubevox
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The operator pod's selector: the same labels as manifests/base. */}}
{{- define "kubevox.operatorSelector" -}}
app.kubernetes.io/name: kubevox
app.kubernetes.io/component: operator
{{- end }}

{{/* repository:tag or repository@digest; tag defaults to the appVersion. */}}
{{- define "kubevox.image" -}}
{{- $img := index . 0 -}}{{- $ctx := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $ctx.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end }}

{{/* kubevox-operator's command line (the same flags as manifests/base/deployment.yaml). */}}
{{- define "kubevox.operatorArgs" -}}
- --liveness=http://0.0.0.0:8080/healthz
- --metrics-port={{ .Values.metrics.port }}
- --peering={{ .Values.peering.name }}
- --log-format={{ .Values.logFormat }}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- with .Values.livekit.allowedCIDRs }}
- --livekit-allowed-cidrs={{ join "," . }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}
