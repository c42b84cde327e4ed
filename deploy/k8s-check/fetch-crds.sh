#!/usr/bin/env bash
# Fetches the CRDs of the custom kinds the chart renders, at pinned versions, into a folder
# (cached by the Makefile under .tools; nothing of them is kept in the repository):
#   KEDA (ScaledObject, TriggerAuthentication, ...): config/crd/bases of the Go module
#     github.com/kedacore/keda/v2, from the Go module proxy;
#   Prometheus Operator (ServiceMonitor, PodMonitor, PrometheusRule): example/prometheus-operator-crd
#     of the Go module github.com/prometheus-operator/prometheus-operator;
#   Strimzi (KafkaTopic, KafkaUser): generated, as Strimzi's build does, by its crd-generator
#     from its api jar, both from Maven Central (strimzi/pom.xml names them).
#
#   deploy/k8s-check/fetch-crds.sh OUT_DIR KEDA_VERSION PROMETHEUS_OPERATOR_VERSION STRIMZI_VERSION
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
out="$1" keda="$2" prometheus_operator="$3" strimzi="$4"
partial="$out.partial"
rm -rf "$partial"
mkdir -p "$partial"

module_dir() {  # the unpacked source of a Go module version, from the module cache
    (cd "$partial" && go mod download -json "$1@$2") \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

dir="$(module_dir github.com/kedacore/keda/v2 "$keda")"
cp "$dir"/config/crd/bases/keda.sh_*.yaml "$partial/"

dir="$(module_dir github.com/prometheus-operator/prometheus-operator "$prometheus_operator")"
for crd in servicemonitors podmonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" "$partial/"
done

# The arguments of Strimzi's own build for these two (api/pom.xml, generate-crd-co-install-v1-eo).
# (Maven's console colours stripped: it writes some even when quiet and in batch mode.)
mvn -q -B -f "$HERE/strimzi/pom.xml" -Dstrimzi.version="$strimzi" \
    dependency:build-classpath -Dmdep.outputFile="$partial/strimzi.classpath" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'

java -Dslf4j.internal.verbosity=ERROR -cp "$(cat "$partial/strimzi.classpath")" io.strimzi.crdgenerator.CrdGenerator \
    --label app:strimzi --label strimzi.io/crd-install:true \
    --target-kube 1.16+ --crd-api-version v1 \
    --api-versions v1alpha1,v1beta1,v1beta2 --storage-version v1beta2 \
    --yaml \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$partial/kafka.strimzi.io_kafkatopics.yaml" \
    "io.strimzi.api.kafka.model.user.KafkaUser=$partial/kafka.strimzi.io_kafkausers.yaml"
rm "$partial/strimzi.classpath"
chmod -R u+w "$partial"

rm -rf "$out"
mv "$partial" "$out"
echo "fetch-crds: $(ls "$out" | tr '\n' ' ')"
