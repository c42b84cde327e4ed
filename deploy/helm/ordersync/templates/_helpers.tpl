{{/*
Names, labels and the facts of each service the templates share.
*/}}

{{- define "ordersync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; every object is named "<fullname>-<part>", so it keeps room for the part. */}}
{{- define "ordersync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ordersync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "ordersync.labels" -}}
helm.sh/chart: {{ include "ordersync.chart" . }}
{{ include "ordersync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ordersync
{{- end }}

{{/* What selects every pod of the release (the NetworkPolicies' "the chart's own pods"). */}}
{{- define "ordersync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ordersync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects; call with (dict "root" $ "component" "order-intake"). */}}
{{- define "ordersync.componentLabels" -}}
{{ include "ordersync.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ordersync.componentSelectorLabels" -}}
{{ include "ordersync.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ordersync.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "ordersync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ordersync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The five services: values key -> name (kebab-case, as its consumer group and OTEL_SERVICE_NAME),
module (`python -m ...`), Postgres role, the topic it consumes (empty: none) and whether it serves
webhooks over HTTP. Read with: include "ordersync.serviceTable" . | fromYaml
*/}}
{{- define "ordersync.serviceTable" -}}
orderIntake: {name: order-intake, module: order_intake, role: order_intake, consumes: dispatch.orders.v1, http: true}
complianceRouting: {name: compliance-routing, module: compliance_routing, role: compliance_routing, consumes: intake.orders.v1, http: false}
fulfillmentDispatch: {name: fulfillment-dispatch, module: fulfillment_dispatch, role: fulfillment_dispatch, consumes: compliance.decisions.v1, http: true}
trackingWriteback: {name: tracking-writeback, module: tracking_writeback, role: tracking_writeback, consumes: dispatch.shipments.v1, http: false}
carrierMapping: {name: carrier-mapping, module: carrier_mapping, role: carrier_mapping, consumes: "", http: false}
{{- end }}

{{/* Service (Kubernetes) name of a component: <fullname>-<component>. */}}
{{- define "ordersync.componentName" -}}
{{- printf "%s-%s" (include "ordersync.fullname" .root) .component }}
{{- end }}

{{/* A DSN without a password: the password comes as PGPASSWORD. Call with (dict "root" $ "user" "order_intake"). */}}
{{- define "ordersync.dsn" -}}
{{- $pg := .root.Values.postgres }}
{{- printf "postgresql://%s@%s:%v/%s" .user $pg.host $pg.port $pg.database }}
{{- if $pg.sslmode }}?sslmode={{ $pg.sslmode }}{{ end }}
{{- end }}

{{- define "ordersync.passwordsSecret" -}}
{{- default (printf "%s-postgres" (include "ordersync.fullname" .)) .Values.postgres.passwords.existingSecret }}
{{- end }}

{{- define "ordersync.migrationSecret" -}}
{{- default (printf "%s-migrator" (include "ordersync.fullname" .)) .Values.postgres.migration.existingSecret }}
{{- end }}

{{- define "ordersync.migrationPasswordKey" -}}
{{- if .Values.postgres.migration.existingSecret }}{{ .Values.postgres.migration.passwordKey }}{{ else }}password{{ end }}
{{- end }}

{{- define "ordersync.credentialsSecret" -}}
{{- default (printf "%s-credentials" (include "ordersync.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "ordersync.callersSecret" -}}
{{- default (printf "%s-callers" (include "ordersync.fullname" .)) .Values.callers.existingSecret }}
{{- end }}

{{- define "ordersync.tenantsConfigMap" -}}
{{- default (printf "%s-tenants" (include "ordersync.fullname" .)) .Values.tenants.existingConfigMap }}
{{- end }}

{{/* The pod-level settings every pod of the chart shares (services and Jobs). */}}
{{- define "ordersync.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* A PodDisruptionBudget's budget: minAvailable when set, else maxUnavailable (default 1); never both. */}}
{{- define "ordersync.pdbBudget" -}}
{{- if and (hasKey . "minAvailable") (not (kindIs "invalid" .minAvailable)) }}
minAvailable: {{ .minAvailable }}
{{- else }}
maxUnavailable: {{ .maxUnavailable | default 1 }}
{{- end }}
{{- end }}

{{/*
Where a pod may run: the grace period, priority, node selection and the spread over zones and
nodes, the same for every Deployment (services and console). Call with (dict "cfg" $cfg "component" $component).
*/}}
{{- define "ordersync.podPlacement" -}}
{{- $cfg := .cfg }}
terminationGracePeriodSeconds: {{ $cfg.terminationGracePeriodSeconds }}
{{- with $cfg.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $cfg.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $cfg.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $cfg.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
topologySpreadConstraints:
  # Over zones as topologySpread says (DoNotSchedule: a zone's loss leaves the others' pods).
  - topologyKey: topology.kubernetes.io/zone
    maxSkew: {{ $cfg.topologySpread.maxSkew }}
    whenUnsatisfiable: {{ $cfg.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "ordersync.componentSelectorLabels" .component | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
  # Over nodes as far as they allow: a strict rule here would leave pods pending on a small pool.
  - topologyKey: kubernetes.io/hostname
    maxSkew: 1
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ordersync.componentSelectorLabels" .component | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
{{- end }}

{{/*
Every Deployment that may be scaled or budgeted (HPA, PDB): component name -> the key of its
values (under services, or "console" for the top-level console values) and the topic it consumes
(KEDA). Read with: include "ordersync.deployments" . | fromYaml; the values with "ordersync.values".
*/}}
{{- define "ordersync.deployments" -}}
{{- range $key, $svc := include "ordersync.serviceTable" . | fromYaml }}
{{ $svc.name }}: {key: {{ $key }}, consumes: {{ $svc.consumes | quote }}}
{{- end }}
operator-console: {key: console, consumes: ""}
{{- end }}

{{- define "ordersync.consoleStaffSecret" -}}
{{- default (printf "%s-console-staff" (include "ordersync.fullname" .)) .Values.console.staff.existingSecret }}
{{- end }}

{{- define "ordersync.consoleSecret" -}}
{{- default (printf "%s-console" (include "ordersync.fullname" .)) .Values.console.secrets.existingSecret }}
{{- end }}
