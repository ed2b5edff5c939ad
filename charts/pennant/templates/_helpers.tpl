{{/*
Names follow Flagger's chart ("flagger.*" templates, base name "flagger") so that `helm upgrade flagger`
over a Flagger release keeps the names and the (immutable) Deployment selector of its objects.
*/}}

{{/* Chart name and version as used by the chart label. */}}
{{- define "flagger.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The app name: "flagger", as Flagger's chart, unless nameOverride is set. */}}
{{- define "flagger.name" -}}
{{- default "flagger" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The fully qualified name: fullnameOverride, or the release name when it contains the app name
(release "flagger" gives "flagger"), or <release>-<name>.
*/}}
{{- define "flagger.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "flagger.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The service account's name. */}}
{{- define "flagger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "flagger.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "flagger.labels" -}}
helm.sh/chart: {{ include "flagger.chart" . }}
app.kubernetes.io/name: {{ include "flagger.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: pennant
{{- end -}}

{{/* The controller's selector: Flagger's, which a Deployment cannot change. */}}
{{- define "flagger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flagger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The controller's replicas: replicaCount, else leaderElection.replicaCount. */}}
{{- define "flagger.replicas" -}}
{{- $n := int (default .Values.leaderElection.replicaCount .Values.replicaCount) -}}
{{- if and (gt $n 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "%d replicas need leaderElection.enabled=true: controllers without leader election would drive the same canaries at once" $n) -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/* The kubeconfig secret of the mesh's cluster: controlplane.kubeconfig, else Flagger's older istio.kubeconfig. */}}
{{- define "flagger.meshKubeconfig" -}}
{{- if .Values.controlplane.kubeconfig.secretName -}}
{{- toJson .Values.controlplane.kubeconfig -}}
{{- else if .Values.istio.kubeconfig.secretName -}}
{{- toJson .Values.istio.kubeconfig -}}
{{- end -}}
{{- end -}}

{{/* The Prometheus the controller queries. */}}
{{- define "flagger.metricsServer" -}}
{{- if .Values.prometheus.install -}}
http://{{ include "flagger.fullname" . }}-prometheus.{{ .Release.Namespace }}:9090
{{- else -}}
{{- .Values.metricsServer -}}
{{- end -}}
{{- end -}}

{{/*
The controller's flags, as a YAML list (each one quoted by toYaml). Unset values are left to the
controller's defaults, which are Flagger's.
*/}}
{{- define "flagger.args" -}}
{{- $v := .Values -}}
{{- $a := list (printf "-log-level=%s" $v.logLevel) -}}
{{- with $v.meshProvider }}{{ $a = append $a (printf "-mesh-provider=%s" .) }}{{ end -}}
{{- $a = append $a (printf "-metrics-server=%s" (include "flagger.metricsServer" .)) -}}
{{- with $v.selectorLabels }}{{ $a = append $a (printf "-selector-labels=%s" .) }}{{ end -}}
{{- with $v.includeLabelPrefix }}{{ $a = append $a (printf "-include-label-prefix=%s" .) }}{{ end -}}
{{- if $v.configTracking }}{{ $a = append $a (printf "-enable-config-tracking=%t" (ne $v.configTracking.enabled false)) }}{{ end -}}
{{- with $v.namespace }}{{ $a = append $a (printf "-namespace=%s" .) }}{{ end -}}
{{- with $v.slack.url }}{{ $a = append $a (printf "-slack-url=%s" .) }}{{ end -}}
{{- with $v.slack.proxy }}{{ $a = append $a (printf "-slack-proxy-url=%s" .) }}{{ end -}}
{{- with $v.slack.token }}{{ $a = append $a (printf "-slack-token=%s" .) }}{{ end -}}
{{- with $v.slack.user }}{{ $a = append $a (printf "-slack-user=%s" .) }}{{ end -}}
{{- with $v.slack.channel }}{{ $a = append $a (printf "-slack-channel=%s" .) }}{{ end -}}
{{- with $v.msteams.url }}{{ $a = append $a (printf "-msteams-url=%s" .) }}{{ end -}}
{{- with $v.msteams.proxy }}{{ $a = append $a (printf "-msteams-proxy-url=%s" .) }}{{ end -}}
{{- if $v.leaderElection.enabled }}{{ $a = concat $a (list "-enable-leader-election=true" (printf "-leader-election-namespace=%s" .Release.Namespace)) }}{{ end -}}
{{- with $v.ingressAnnotationsPrefix }}{{ $a = append $a (printf "-ingress-annotations-prefix=%s" .) }}{{ end -}}
{{- with $v.ingressClass }}{{ $a = append $a (printf "-ingress-class=%s" .) }}{{ end -}}
{{- with $v.eventWebhook }}{{ $a = append $a (printf "-event-webhook=%s" .) }}{{ end -}}
{{- with $v.clusterName }}{{ $a = append $a (printf "-cluster-name=%s" .) }}{{ end -}}
{{- with $v.threadiness }}{{ $a = append $a (printf "-threadiness=%v" .) }}{{ end -}}
{{- with $v.kubeconfigQPS }}{{ $a = append $a (printf "-kubeconfig-qps=%v" .) }}{{ end -}}
{{- with $v.kubeconfigBurst }}{{ $a = append $a (printf "-kubeconfig-burst=%v" .) }}{{ end -}}
{{- with include "flagger.meshKubeconfig" . }}{{ $a = append $a (printf "-kubeconfig-service-mesh=/tmp/istio-host/%s" (fromJson .).key) }}{{ end -}}
{{- if $v.noCrossNamespaceRefs }}{{ $a = append $a "-no-cross-namespace-refs=true" }}{{ end -}}
{{- with $v.maxConcurrentReleases }}{{ $a = append $a (printf "-max-concurrent-releases=%v" .) }}{{ end -}}
{{- with include "pennant.shardSelector" . }}{{ $a = append $a (printf "-watch-label-selector=%s" .) }}{{ end -}}
{{- $a = append $a "-health-probe-bind-address=:8081" -}}
{{- $a = concat $a (default (list) $v.additionalArgs) -}}
{{- toYaml $a -}}
{{- end -}}

{{/* The canaries a Deployment owns (-watch-label-selector): a shard's those labelled with its key, the
main one's those without the label once there are shards, every canary otherwise. */}}
{{- define "pennant.shardSelector" -}}
{{- if .Shard -}}
sharding.fluxcd.io/key={{ .Shard }}
{{- else if .Values.sharding.shards -}}
!sharding.fluxcd.io/key
{{- end -}}
{{- end -}}
