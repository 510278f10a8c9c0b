{{/* Name of a service's Deployment and Service: <release>-<service>. */}}
{{- define "chatcrm.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chatcrm.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "chatcrm.labels" -}}
{{ include "chatcrm.selectorLabels" . }}
app.kubernetes.io/part-of: chatcrm
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* The image of a service: its own override (skaffold sets one), else registry/prefix+name:tag. */}}
{{- define "chatcrm.image" -}}
{{- if .svc.image -}}
{{ .svc.image }}
{{- else -}}
{{ printf "%s/%s%s:%s" .root.Values.image.registry .root.Values.image.repositoryPrefix .name (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end -}}
{{- end -}}
