{{/*
Name of the server's Kubernetes objects: `appName` (a Kubernetes-safe form of the site
name written by flare-deploy), else the site name, else the chart name.
*/}}
{{- define "nvflare.name" -}}
{{- default .Chart.Name (default .Values.name .Values.appName) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nvflare.labels" -}}
app.kubernetes.io/name: {{ include "nvflare.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "nvflare.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nvflare.name" . | quote }}
{{- end -}}

{{/* repository[:tag][@digest] */}}
{{- define "nvflare.image" -}}
{{- .Values.image.repository -}}
{{- with .Values.image.tag }}:{{ . }}{{ end -}}
{{- with .Values.image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "nvflare.hostPortEnabled" -}}
{{- if .Values.hostPortEnabled }}true{{ else }}false{{ end -}}
{{- end -}}

{{- define "nvflare.tcpConfigMapEnabled" -}}
{{- if .Values.tcpConfigMapEnabled }}true{{ else }}false{{ end -}}
{{- end -}}
