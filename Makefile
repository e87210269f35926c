# kubevox: `make run` for the demo, `make test` for the test suite. Everything else is set up on
# first use: a local virtualenv (.venv) and, cached under ~/.cache/kubevox, a Kubernetes control
# plane built from its Go modules.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STATE := .kubevox

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/dev.txt requirements/build.txt hack/install-python.sh
	@bash hack/install-python.sh "$(PYTHON)" "$(VENV)"
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create .venv with the lock's packages (requirements/dev.txt) and kubevox

.PHONY: lock
lock: $(STAMP) ## Re-lock after editing pyproject.toml (UPGRADE=1: newest allowed versions)
	@bash hack/lock.sh $(if $(UPGRADE),--upgrade)

.PHONY: controlplane
controlplane: ## Build (once) and cache kube-apiserver, kube-controller-manager, kubectl and etcd
	@bash hack/controlplane/build.sh >/dev/null

.PHONY: node
node: ## Build (once) and cache the local node's programs: kubelet, kube-scheduler, kube-proxy, CoreDNS, Prometheus, KEDA
	@bash hack/node/build-kubernetes.sh >/dev/null
	@bash hack/node/build-coredns.sh >/dev/null
	@bash hack/tools/build-promtool.sh prometheus >/dev/null
	@bash hack/node/build-keda.sh >/dev/null

.PHONY: builds
builds: ## Build (once) and cache every program make test runs, side by side (hack/build-all.sh)
	@bash hack/build-all.sh

.PHONY: livekit
livekit: ## Build (once) and cache livekit-server
	@bash hack/livekit/build.sh >/dev/null

.PHONY: tools
tools: ## Build (once) and cache helm, terraform and its providers, promtool, checkov; fetch S3Proxy
	@for s in build-helm build-terraform build-terraform-providers build-promtool build-checkov \
		fetch-third-party fetch-s3proxy; do bash hack/tools/$$s.sh >/dev/null || exit 1; done

.PHONY: install
install: $(STAMP) livekit ## Install kubevox (Helm chart, local images), LiveKit and Redis on make cluster-up's node
	@$(PY) -m kubevox_devenv.install --dir $(STATE)

.PHONY: dev-secrets
dev-secrets: $(STAMP) ## The samples' Secrets (livekit-credentials, redis) in namespace NS, for make install's cluster
	@test -n "$(NS)" || { echo "usage: make dev-secrets NS=<namespace>"; exit 2; }
	@$(PY) -m kubevox_devenv.install --dir $(STATE) dev-secrets --namespace $(NS)

.PHONY: images
images: $(STAMP) ## Build the operator and runtime images (no registry; cached), load them into a running node
	@$(PY) -m kubevox_devenv.images

.PHONY: crds
crds: $(STAMP) ## Regenerate crds/ from the pydantic models (and the installers' copies)
	@$(PY) -m kubevox_api.crd crds
	@bash hack/tools/sync-manifests.sh

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format check) and mypy
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

.PHONY: fmt
fmt: $(STAMP) ## Format and fix what ruff can
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

.PHONY: test
test: $(STAMP) builds ## Run every test, against the real local components
	@$(PY) -m pytest --durations=40 $(PYTEST_ARGS)

.PHONY: cluster-up
cluster-up: $(STAMP) controlplane ## Start the local control plane and, where possible, a node (.kubevox/kubeconfig)
	@$(PY) -m kubevox_devenv.cluster up --dir $(STATE) --node auto
	@echo "Try: $(STATE)/kubectl --kubeconfig $(STATE)/kubeconfig get crd"

.PHONY: cluster-down
cluster-down: ## Stop the local cluster; leaves nothing running (processes, mounts, network, iptables)
	@if [ -x $(PY) ]; then $(PY) -m kubevox_devenv.cluster down --dir $(STATE); fi

.PHONY: run
run: $(STAMP) controlplane livekit ## The demo: operator on a local control plane, then a real call
	@$(PY) -m kubevox_devenv.demo

.PHONY: clean
clean: cluster-down ## Remove .venv and local state (keeps the ~/.cache/kubevox build cache)
	rm -rf $(VENV) $(STATE) .mypy_cache .ruff_cache .pytest_cache
