# ordersync: one entry point for building, testing, running and benchmarking.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYSTEM ?= python3
VENV          := .venv
PY            := $(VENV)/bin/python
TOOLS         := $(CURDIR)/.tools
BUF_VERSION   := v1.47.2
BUF           := $(TOOLS)/bin/buf
GRPCURL_VERSION := v1.9.3
GRPCURL       := $(TOOLS)/bin/grpcurl
GHZ_VERSION   := v0.120.0
GHZ           := $(TOOLS)/bin/ghz
# promtool checks the alert rules. Built from Prometheus' module without the service-discovery
# plugins (tag remove_all_sd; the rules and the compose scrape config need none): about 4 min
# the first time on 2 cores instead of 8, then cached in .tools/bin.
PROMTOOL_VERSION := v0.316.0
PROMTOOL      := $(TOOLS)/bin/promtool
ALERTS_DIR    := deploy/observability/prometheus
# The Helm chart's check with no cluster (make k8s-check; docs/kubernetes-validation.md). helm,
# kubeconform and kube-apiserver are built from the Go module proxy (kube-apiserver through the
# wrapper module in deploy/k8s-check/apiserver, whose go.mod pins the Kubernetes version; about
# 5 min the first time), etcd is Debian's package unpacked, the built-in kinds' schemas come from
# PyPI's kubernetes-validate and the custom kinds' CRDs from KEDA's and Prometheus Operator's Go
# modules and Strimzi's jars on Maven Central. All pinned, fetched once into .tools.
HELM_VERSION  := v3.19.5
HELM          := $(TOOLS)/bin/helm
KUBECONFORM_VERSION := v0.8.0
KUBECONFORM   := $(TOOLS)/bin/kubeconform
APISERVER_MOD := deploy/k8s-check/apiserver
KUBERNETES_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2}' $(APISERVER_MOD)/go.mod)
KUBE_APISERVER := $(TOOLS)/bin/kube-apiserver
ETCD_DEB_VERSION := 3.4.23-4+b4
ETCD          := $(TOOLS)/etcd-$(ETCD_DEB_VERSION)/usr/bin/etcd
K8S_SCHEMA_REQS := deploy/k8s-check/requirements-schemas.txt
K8S_SCHEMA_VERSION := $(shell sed -n 's/^kubernetes-validate==\([0-9.]*\) .*/\1/p' $(K8S_SCHEMA_REQS))
KEDA_VERSION  := v2.21.0
PROMETHEUS_OPERATOR_VERSION := v0.85.0
STRIMZI_VERSION := 0.45.0
K8S_CACHE     := $(TOOLS)/k8s-check
K8S_VALIDATE  := $(K8S_CACHE)/kubernetes-validate-$(K8S_SCHEMA_VERSION)
K8S_CRDS      := $(K8S_CACHE)/crds-keda-$(KEDA_VERSION)-prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION)-strimzi-$(STRIMZI_VERSION)
K8S_SCHEMAS   := $(K8S_CACHE)/schemas-$(K8S_SCHEMA_VERSION)-$(notdir $(K8S_CRDS))
# What make k8s-check checks: the chart with its default values, then with each values file.
CHART         ?= deploy/helm/ordersync
CHART_VALUES  ?= deploy/helm/values-production.yaml
K8S_CHECK_ENV  = HELM=$(HELM) KUBECONFORM=$(KUBECONFORM) KUBE_APISERVER=$(KUBE_APISERVER) ETCD=$(ETCD) \
                 K8S_SCHEMAS=$(K8S_SCHEMAS) K8S_SCHEMA_VERSION=$(K8S_SCHEMA_VERSION) K8S_CRDS=$(K8S_CRDS) \
                 PYTHON=$(CURDIR)/$(PY)
# The five pipeline services' package folders under services/.
SERVICES      := order_intake compliance_routing fulfillment_dispatch tracking_writeback carrier_mapping
# Every package folder under services/ that is an import root (the venv's .pth, deploy/Dockerfile's
# PYTHONPATH): the five services and the operator console, which is no pipeline service.
IMPORT_ROOTS  := $(SERVICES) operator_console
PROTO_FILES    = $(shell find protos -name '*.proto')

export ORDERSYNC_PYTHON := $(CURDIR)/$(PY)

.PHONY: help venv protos lint lint-code lint-protos lint-alerts k8s-tools k8s-check test test-unit test-integration test-e2e test-faults \
        infra-up infra-down browser demo bench bench-mapping bench-shipstation bench-groupon bench-lookups bench-trace up down clean grpcurl

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	@# The operator command: `ordersync ...` in the venv's bin (python -m libs.cli).
	@printf '#!/bin/sh\nexec "$$(dirname "$$0")/python" -m libs.cli "$$@"\n' > $(VENV)/bin/ordersync
	@chmod +x $(VENV)/bin/ordersync
	touch $@

# Import roots: the repo (libs, tests), generated code, and each package folder of IMPORT_ROOTS.
# Its own step, so a venv made before IMPORT_ROOTS changed gets the new list without a reinstall.
$(VENV)/.paths: $(VENV)/.installed Makefile
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  { echo "$(CURDIR)"; echo "$(CURDIR)/libs/genproto"; \
	    for s in $(IMPORT_ROOTS); do echo "$(CURDIR)/services/$$s"; done; } > "$$site/ordersync-paths.pth"
	touch $@

venv: $(VENV)/.installed $(VENV)/.paths ## create .venv from requirements.lock

libs/genproto/.generated: $(VENV)/.installed $(PROTO_FILES)
	rm -rf libs/genproto/ordersync
	$(PY) -m grpc_tools.protoc -I protos --python_out=libs/genproto --grpc_python_out=libs/genproto \
	  --pyi_out=libs/genproto $(PROTO_FILES)
	touch $@

protos: libs/genproto/.generated ## generate Python code from protos/ into libs/genproto

$(BUF):
	GOBIN=$(TOOLS)/bin go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(GRPCURL):
	GOBIN=$(TOOLS)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(GHZ):
	GOBIN=$(TOOLS)/bin go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(PROMTOOL):
	GOBIN=$(TOOLS)/bin go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

$(HELM):
	GOBIN=$(TOOLS)/bin go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(KUBECONFORM):
	GOBIN=$(TOOLS)/bin go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

# The version -ldflags stamps is the one upstream's build stamps (hack/lib/version.sh).
KUBE_VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
KUBE_LDFLAGS = -s -w $(foreach p,$(KUBE_VERSION_PKGS),-X $(p).gitVersion=$(KUBERNETES_VERSION) \
  -X $(p).gitMajor=$(word 1,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
  -X $(p).gitMinor=$(word 2,$(subst ., ,$(KUBERNETES_VERSION))) -X $(p).gitTreeState=clean)

$(KUBE_APISERVER): $(APISERVER_MOD)/go.mod $(APISERVER_MOD)/go.sum $(APISERVER_MOD)/main.go
	cd $(APISERVER_MOD) && go build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@ .

$(ETCD):
	rm -rf $(TOOLS)/etcd-$(ETCD_DEB_VERSION) && mkdir -p $(TOOLS)/etcd-$(ETCD_DEB_VERSION)/deb
	@# Only unpacked: no daemon is installed or started (check.sh runs it on loopback).
	cd $(TOOLS)/etcd-$(ETCD_DEB_VERSION)/deb && { apt-get download -q -o APT::Sandbox::User=root etcd-server=$(ETCD_DEB_VERSION) \
	  || { apt-get update -qq && apt-get download -q -o APT::Sandbox::User=root etcd-server=$(ETCD_DEB_VERSION); }; }
	dpkg -x $(TOOLS)/etcd-$(ETCD_DEB_VERSION)/deb/etcd-server_*.deb $(TOOLS)/etcd-$(ETCD_DEB_VERSION)
	test -x $@ && touch $@

$(K8S_VALIDATE)/.installed: $(K8S_SCHEMA_REQS) | $(VENV)/.installed
	rm -rf $(K8S_VALIDATE)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --require-hashes --only-binary :all: \
	  --target $(K8S_VALIDATE) -r $(K8S_SCHEMA_REQS)
	touch $@

$(K8S_CRDS)/.fetched: deploy/k8s-check/fetch-crds.sh deploy/k8s-check/strimzi/pom.xml
	bash deploy/k8s-check/fetch-crds.sh $(K8S_CRDS) $(KEDA_VERSION) $(PROMETHEUS_OPERATOR_VERSION) $(STRIMZI_VERSION)
	touch $@

$(K8S_SCHEMAS)/.done: $(K8S_VALIDATE)/.installed $(K8S_CRDS)/.fetched deploy/k8s-check/schemas.py
	$(PY) deploy/k8s-check/schemas.py --kubernetes-validate $(K8S_VALIDATE) --version $(K8S_SCHEMA_VERSION) \
	  --crds $(K8S_CRDS) --out $(K8S_SCHEMAS)
	touch $@

k8s-tools: $(HELM) $(KUBECONFORM) $(KUBE_APISERVER) $(ETCD) $(K8S_SCHEMAS)/.done ## build and fetch what make k8s-check needs into .tools (cached)

k8s-check: venv k8s-tools ## the Helm chart with no cluster: helm lint and template, kubeconform -strict, dry-run on a kube-apiserver (CHART=, CHART_VALUES=)
	$(K8S_CHECK_ENV) bash deploy/k8s-check/check.sh $(CHART) $(CHART_VALUES)
	@# The check's own tests: the fixture chart passes, each broken copy fails with its message
	@# (two at a time: each starts its own etcd and kube-apiserver).
	$(K8S_CHECK_ENV) $(PY) -m pytest -n 2 -m k8s_check tests/k8s

browser: ## install Debian's chromium for the console's browser tests (once; needs root or sudo)
	bash deploy/local/browser.sh

lint-alerts: $(PROMTOOL) ## promtool check rules and the alert rules' unit tests
	$(PROMTOOL) check config --syntax-only $(ALERTS_DIR)/prometheus.yml
	$(PROMTOOL) check rules $(ALERTS_DIR)/alerts.yml
	cd $(ALERTS_DIR) && $(PROMTOOL) test rules alerts_test.yml

grpcurl: $(GRPCURL) ## install grpcurl into .tools/bin (for deploy/local/grpc-auth-check.sh)

lint-protos: $(BUF) ## buf lint (STANDARD + COMMENTS)
	$(BUF) lint protos

lint: lint-code lint-alerts ## ruff, mypy, buf lint and promtool

lint-code: venv protos lint-protos ## ruff, mypy and buf lint (what `make test` runs first)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	@# What mypy checks (libs and services, tests included) and how: [tool.mypy] in pyproject.toml.
	$(PY) -m mypy

infra-up: venv ## start local PostgreSQL and Kafka (KRaft) and create topics
	bash deploy/local/infra.sh up

infra-down: ## stop local PostgreSQL and Kafka
	bash deploy/local/infra.sh down

clean: infra-down ## stop infrastructure and remove generated and run files
	rm -rf .run libs/genproto/ordersync libs/genproto/.generated

test: venv protos ## lint, then every test (unit, integration, e2e, the console in headless Chromium) on real PostgreSQL and Kafka, then the Helm chart check, then the short fault suite
	@# What the tests need but lint does not is made meanwhile, from the start: Debian's chromium
	@# (the console's browser tests), then at low priority the k8s check's tools (helm, kubeconform,
	@# kube-apiserver, etcd, schemas) and promtool, the first time only. chromium comes first and
	@# alone of apt's work, since apt runs one command at a time (etcd's .deb is fetched by apt too).
	@# Two pytest workers, each taking whole files (a module's stack stays in one worker): most of
	@# an e2e test is waiting on its services. Once the tests are done promtool checks the alert
	@# rules and make k8s-check the chart (its own tests, marked k8s_check, run there).
	@mkdir -p .run && rm -f .run/browser.ready .run/browser.failed
	@{ if bash deploy/local/browser.sh > .run/browser-install.log 2>&1; then touch .run/browser.ready; \
	     else touch .run/browser.failed; fi; \
	     nice -n 15 $(MAKE) -s k8s-tools > .run/k8s-tools-build.log 2>&1; } & k8s_build=$$!; \
	  { [ -x $(PROMTOOL) ] || nice -n 15 $(MAKE) -s $(PROMTOOL) > .run/promtool-build.log 2>&1; } & build=$$!; \
	  $(MAKE) -s lint-code || { echo "lint failed; waiting for the background builds to stop"; wait; exit 1; }; \
	  until [ -e .run/browser.ready ]; do \
	    if [ -e .run/browser.failed ]; then echo "chromium install failed:"; tail -20 .run/browser-install.log; wait; exit 1; fi; \
	    sleep 1; done; \
	  bash deploy/local/with-infra.sh $(PY) -m pytest -n 2 --dist loadfile --durations=15 -m "not k8s_check" \
	    libs services tests; tests=$$?; \
	  wait $$build || { echo "promtool build failed:"; tail -20 .run/promtool-build.log; exit 1; }; \
	  wait $$k8s_build || { echo "k8s check tools build failed:"; tail -20 .run/k8s-tools-build.log; exit 1; }; \
	  exit $$tests
	$(MAKE) -s lint-alerts
	$(MAKE) -s k8s-check
	@# Outside with-infra.sh: the fault suite restarts Kafka and PostgreSQL, so it runs its own.
	$(PY) -m tests.faults --short

test-unit: protos ## tests that need no infrastructure
	$(PY) -m pytest libs services tests -m "not integration and not e2e and not k8s_check"

test-integration: protos ## integration tests on real PostgreSQL and Kafka
	bash deploy/local/with-infra.sh $(PY) -m pytest libs services tests -m integration

test-e2e: protos browser ## the five services as processes, with the simulators (and the console in headless Chromium)
	bash deploy/local/with-infra.sh $(PY) -m pytest tests/e2e

test-faults: protos ## orders in bursts while each service is killed, Kafka and Postgres restarted, the provider fails (own infra)
	$(PY) -m tests.faults

demo: protos ## the whole system with sample orders: what happened to each, and the operator console's URL (KEEP=1: leave it running to browse)
	KEEP=$(KEEP) bash deploy/local/with-infra.sh $(PY) -m tests.system.demo

bench: protos ## end-to-end throughput, paced latency and CPU per order of every process beside a bare Kafka relay (N=20000, REPLICAS=1, PROFILE=<service>)
	bash deploy/local/with-infra.sh $(PY) -m tests.system.bench --orders $${N:-20000} --replicas $${REPLICAS:-1} \
		$${PROFILE:+--profile $$PROFILE}

bench-mapping: protos $(GHZ) ## carrier-mapping translate rps and p99 (concurrency 32) and batch rate beside a bare grpc.aio server, driven by ghz and the Python client, 3 rounds
	bash deploy/local/with-infra.sh $(PY) -m tests.system.bench_mapping --ghz $(GHZ)

bench-shipstation: protos ## N Cin7 orders (BENCH_N=5000) to ShipStation and shipped, under 40 req/min, beside one-per-call (BENCH_WINDOW_S=90)
	bash deploy/local/with-infra.sh $(PY) -m tests.system.bench_shipstation --orders $${BENCH_N:-$${N:-5000}} \
	  --baseline-window $${BENCH_WINDOW_S:-90} --label-batch $${BENCH_LABEL_BATCH:-250}

bench-groupon: protos ## N Groupon orders (BENCH_N=2000) from CommerceInterface pages to Mintsoft creates, requests/order, beside a bare client (BENCH_MINTSOFT_PACE=1200/min)
	bash deploy/local/with-infra.sh $(PY) -m tests.system.bench_groupon --orders $${BENCH_N:-$${N:-2000}} \
	  --mintsoft-pace $${BENCH_MINTSOFT_PACE:-1200} --baseline-window $${BENCH_WINDOW_S:-120}

bench-trace: protos ## ordersync trace of an order with BENCH_REVISIONS (1000) more steps, beside a short one
	bash deploy/local/with-infra.sh $(PY) -m tests.system.bench_trace --revisions $${BENCH_REVISIONS:-1000}

bench-lookups: protos ## customer look-ups rps and p50/p99 (concurrency 32, warm cache) and hit ratio, beside the same calls straight to the directory (BENCH_N=20000)
	bash deploy/local/with-infra.sh $(PY) -m tests.system.bench_lookups --requests $${BENCH_N:-$${N:-20000}}

up: ## with Docker: Kafka, Postgres, the five services, the operator console and a collector (add COMPOSE_PROFILES=demo for the simulators)
	docker compose up --build -d

down: ## with Docker: stop what `make up` started
	docker compose down
