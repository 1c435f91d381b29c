{{/*
Name of the client's Kubernetes objects: `serviceName` (a Kubernetes-safe form of the site
name written by flare-deploy), else the site name, else the chart name.
*/}}
{{- define "nvflare.name" -}}
{{- default .Chart.Name (default .Values.name .Values.serviceName) | trunc 63 | trimSuffix "-" -}}
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
