{{/* Names and labels, as `helm create` makes them. */}}
{{- define "coder-audit-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coder-audit-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "coder-audit-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coder-audit-gateway.labels" -}}
helm.sh/chart: {{ include "coder-audit-gateway.chart" . }}
{{ include "coder-audit-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "coder-audit-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coder-audit-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "coder-audit-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "coder-audit-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* More than one replica may run: worth a PodDisruptionBudget. */}}
{{- define "coder-audit-gateway.replicated" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "coder-audit-gateway.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* Where the probes knock: the metrics listener (plain HTTP) when there is one. */}}
{{- define "coder-audit-gateway.probePort" -}}
{{- if .Values.metrics.port -}}
port: metrics
scheme: HTTP
{{- else -}}
port: http
scheme: {{ include "coder-audit-gateway.scheme" . }}
{{- end -}}
{{- end }}
