{{/* Chart name. */}}
{{- define "telugu-s2s.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: <release>-telugu-s2s unless the release name already holds it. */}}
{{- define "telugu-s2s.fullname" -}}
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

{{/* Name of one component's resources: <fullname>-<component>. Call with (list $ "codec"). */}}
{{- define "telugu-s2s.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "telugu-s2s.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "telugu-s2s.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "telugu-s2s.labels" -}}
helm.sh/chart: {{ include "telugu-s2s.chart" . }}
app.kubernetes.io/name: {{ include "telugu-s2s.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: telugu-s2s
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component. Call with (list $ "codec"). */}}
{{- define "telugu-s2s.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "telugu-s2s.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component. Call with (list $ "codec"). */}}
{{- define "telugu-s2s.componentLabels" -}}
{{ include "telugu-s2s.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* image reference: repository:tag, tag defaulting to the appVersion. Call with (list $ .Values.gateway.image). */}}
{{- define "telugu-s2s.image" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* In-cluster DNS name of a component's Service. Call with (list $ "codec"). */}}
{{- define "telugu-s2s.serviceHost" -}}
{{- $root := index . 0 }}
{{- printf "%s.%s.svc.cluster.local" (include "telugu-s2s.componentName" .) $root.Release.Namespace }}
{{- end }}

{{/*
gRPC target of an internal (headless) Service. The dns:/// scheme makes the client resolve
every pod address; with the round_robin policy each call picks the next pod.
Call with (list $ "codec" 50052).
*/}}
{{- define "telugu-s2s.grpcTarget" -}}
{{- printf "dns:///%s:%v" (include "telugu-s2s.serviceHost" (list (index . 0) (index . 1))) (index . 2) }}
{{- end }}

{{/* Pod-level security context for the project's images (uid 10001). */}}
{{- define "telugu-s2s.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context: no privilege escalation, no capabilities, read-only root. */}}
{{- define "telugu-s2s.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* nodeSelector / tolerations / affinity / pull secrets of a component. Call with (list $ .Values.codec). */}}
{{- define "telugu-s2s.scheduling" -}}
{{- $root := index . 0 }}
{{- $c := index . 1 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Spread replicas of a component over nodes (soft). Call with (list $ "codec"). */}}
{{- define "telugu-s2s.topologySpread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "telugu-s2s.selectorLabels" . | nindent 8 }}
{{- end }}

{{/* The checkpoints volume source. */}}
{{- define "telugu-s2s.modelsVolume" -}}
{{- if .Values.models.volume }}
{{- toYaml .Values.models.volume }}
{{- else }}
persistentVolumeClaim:
  claimName: {{ required "models.existingClaim or models.volume must be set" .Values.models.existingClaim }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Redis: URL and password Secret (bundled or external). */}}
{{- define "telugu-s2s.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:6379/0" (include "telugu-s2s.serviceHost" (list . "redis")) }}
{{- else }}
{{- required "externalRedis.url is required when redis.enabled=false" .Values.externalRedis.url }}
{{- end }}
{{- end }}

{{- define "telugu-s2s.redisSecretName" -}}
{{- if .Values.redis.enabled }}
{{- default (include "telugu-s2s.componentName" (list . "redis")) .Values.redis.auth.existingSecret }}
{{- else }}
{{- .Values.externalRedis.existingSecret }}
{{- end }}
{{- end }}

{{- define "telugu-s2s.redisSecretKey" -}}
{{- if .Values.redis.enabled }}
{{- .Values.redis.auth.existingSecretKey }}
{{- else }}
{{- .Values.externalRedis.existingSecretKey }}
{{- end }}
{{- end }}

{{/* Checks of values that the schema cannot express. */}}
{{- define "telugu-s2s.validate" -}}
{{- $g := .Values.gateway }}
{{- if le (int $g.terminationGracePeriodSeconds) (add $g.drainGraceSeconds $g.preStopSleepSeconds | int) }}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%v) must exceed gateway.preStopSleepSeconds + gateway.drainGraceSeconds (%v): otherwise calls are killed mid-drain" $g.terminationGracePeriodSeconds (add $g.drainGraceSeconds $g.preStopSleepSeconds)) }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) }}
{{- fail "redis.enabled=false needs externalRedis.url (redis:// or rediss://)" }}
{{- end }}
{{- if and .Values.redis.enabled .Values.externalRedis.url }}
{{- fail "set either redis.enabled=true or externalRedis.url, not both" }}
{{- end }}
{{- if and (eq .Values.codec.device "cuda") (not .Values.codec.gpu.enabled) }}
{{- fail "codec.device=cuda needs codec.gpu.enabled=true (and a CUDA codec image)" }}
{{- end }}
{{- $ta := .Values.triton.autoscaling }}
{{- if and $ta.enabled (not (or $ta.queueTime.enabled $ta.gpuUtilization.enabled)) }}
{{- fail "triton.autoscaling.enabled needs triton.autoscaling.queueTime.enabled or triton.autoscaling.gpuUtilization.enabled" }}
{{- end }}
{{- $ga := .Values.gateway.autoscaling }}
{{- if and $ga.enabled (not (or $ga.targetCPUUtilizationPercentage $ga.activeCalls.enabled)) }}
{{- fail "gateway.autoscaling.enabled needs targetCPUUtilizationPercentage > 0 or activeCalls.enabled" }}
{{- end }}
{{- range $c := list "gateway" "codec" "triton" }}
{{- $a := (index $.Values $c).autoscaling }}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) }}
{{- fail (printf "%s.autoscaling.minReplicas (%v) exceeds maxReplicas (%v)" $c $a.minReplicas $a.maxReplicas) }}
{{- end }}
{{- end }}
{{- if .Values.web.enabled }}
{{- fail "web.enabled: the web page is not packaged in this chart version yet; keep web.enabled=false" }}
{{- end }}
{{- end }}
