# Buy with Prime serverless integration: every developer and CI command.
# `make test` is what CI runs (.ci/run). Virtual environments are created on first use.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
SAM_VENV  := .venv-sam
# checkov pins an old boto3 and packaging: its own virtual environment, like SAM CLI's.
CHECKOV_VENV := .venv-checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov
# LocalStack community (a real CloudFormation engine, run without Docker): its own too.
LOCALSTACK_VENV := .venv-localstack
BIN       := $(VENV)/bin
SAM       := $(SAM_VENV)/bin/sam
ENV       ?= default
# sam build needs a python3.13 first on PATH (it checks the runtime's binary).
SAM_PATH  := PATH="$(CURDIR)/$(BIN):$$PATH"
EVENTS    := $(filter-out env,$(basename $(notdir $(wildcard events/*.json))))

# A virtual environment is usable when its python is 3.13 and has pip: one left by a Ctrl-C during
# its creation, or made by another Python, is rebuilt (checked on every run, so a stamp left
# inside a broken one does not hide it).
venv_ok = $(1)/bin/python -c 'import sys, pip; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null
venv_force = $(if $(shell $(call venv_ok,$(1)) && echo ok),,FORCE)
FORCE:

.PHONY: FORCE help install browser localstack deploy-local-test lint format typecheck unit pytest e2e invoke-test demo dev screenshots bench validate lock audit build test deploy redrive replay clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
	@echo "  invoke-NAME    one per sample in events/: $(EVENTS)"

install: $(VENV)/.installed $(SAM_VENV)/.installed ## create both virtual environments

# The last step installs the operator CLI as $(BIN)/bwpctl (editable: this checkout's bwpctl/ and src/).
$(VENV)/.installed: requirements/dev.txt src/requirements.txt src/requirements-oauth.txt pyproject.toml $(call venv_force,$(VENV))
	@py=$$(scripts/find-python313.sh); $(call venv_ok,$(VENV)) || { rm -rf $(VENV); "$$py" -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(SAM_VENV)/.installed: requirements/sam.txt $(call venv_force,$(SAM_VENV))
	@py=$$(scripts/find-python313.sh); $(call venv_ok,$(SAM_VENV)) || { rm -rf $(SAM_VENV); "$$py" -m venv $(SAM_VENV); }
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements/sam.txt
	@touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it cannot download its own here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium chromium-driver >/dev/null

browser: $(CHROMIUM) ## install Debian's chromium for the browser tests (apt-get)

$(CHECKOV_VENV)/.installed: requirements/checkov.txt $(call venv_force,$(CHECKOV_VENV))
	@py=$$(scripts/find-python313.sh); $(call venv_ok,$(CHECKOV_VENV)) || { rm -rf $(CHECKOV_VENV); "$$py" -m venv $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/checkov.txt
	@touch $@

# LocalStack and the two plugins that run it offline (localstack-offline/): a real CloudFormation
# engine for tests/e2e/test_cloudformation_deploy.py, which `sam deploy`s template.yaml onto it.
$(LOCALSTACK_VENV)/.installed: requirements/localstack.txt localstack-offline/pyproject.toml localstack-offline/bwp_localstack_offline.py $(call venv_force,$(LOCALSTACK_VENV))
	@py=$$(scripts/find-python313.sh); $(call venv_ok,$(LOCALSTACK_VENV)) || { rm -rf $(LOCALSTACK_VENV); "$$py" -m venv $(LOCALSTACK_VENV); }
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet -r requirements/localstack.txt
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall ./localstack-offline
	@touch $@

localstack: $(LOCALSTACK_VENV)/.installed ## install LocalStack community into its own virtual environment (for the deploy test)

deploy-local-test: $(VENV)/.installed $(SAM_VENV)/.installed $(LOCALSTACK_VENV)/.installed ## sam build + sam deploy/update/delete of template.yaml onto LocalStack on loopback
	$(BIN)/pytest -q tests/e2e/test_cloudformation_deploy.py

lint: $(VENV)/.installed ## ruff (lint + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed ## mypy --strict over src/ and sandbox/
	$(BIN)/mypy

unit: $(VENV)/.installed $(SAM_VENV)/.installed ## the fast loop: every test but the local stack, browser and reliability suites
	$(BIN)/pytest -q tests --ignore=tests/e2e --ignore=tests/reliability

pytest: $(VENV)/.installed $(SAM_VENV)/.installed $(LOCALSTACK_VENV)/.installed $(CHROMIUM) ## every test (moto, sandbox, local stack, Chromium, LocalStack deploy), with src/'s coverage
	$(BIN)/pytest --cov=src --cov-report=term:skip-covered

e2e: $(VENV)/.installed $(SAM_VENV)/.installed $(LOCALSTACK_VENV)/.installed $(CHROMIUM) ## end-to-end tests only: the local stack and headless Chromium
	$(BIN)/pytest -m e2e tests/e2e

demo: $(VENV)/.installed ## the whole system on this machine, one scripted run with a report (no AWS, no Docker)
	$(BIN)/python -m devtools.demo --save-report

dev: $(VENV)/.installed ## the whole system on this machine for a person: open the printed Launch URL; Ctrl-C stops
	$(BIN)/python -m devtools.local_stack $(DEV_FLAGS)

screenshots: $(VENV)/.installed $(CHROMIUM) ## re-take docs/images/*.png in headless Chromium
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -m browser tests/e2e/test_browser_install.py

bench: $(VENV)/.installed $(SAM_VENV)/.installed ## cold start, artifact sizes, event batches, OAuth server time: one table (bench/RESULTS.md)
	$(SAM_PATH) $(BIN)/python -m bench

# cfn-guard 3.1.1 and the AWS Control Tower guard rules, pinned together: both ship in this npm
# package (cfn-guard's own GitHub release and the guard rules registry's cannot be downloaded here,
# and npm has no `cfn-guard` package). Only the binary and the rules are unpacked (about 40 MB).
CFN_GUARD_PACKAGE := @cdklabs/cdk-validator-cfnguard@0.0.62
CFN_GUARD_SHA512  := 4a0da4f34ebb07400827cd901522e11d3508ab13984ca001bd5ad31e2c9cea3d2b136347962d9d88862a7fec3e0e4b8328261880c20e81adcead830e1d4c3499
CFN_GUARD_DIR     := .tools/cdk-validator-cfnguard-0.0.62
CFN_GUARD         := $(CFN_GUARD_DIR)/package/bin/ubuntu/$(shell uname -m)/cfn-guard
CFN_GUARD_RULES   := $(CFN_GUARD_DIR)/package/rules/control-tower/cfn-guard
# template.yaml as CloudFormation deploys it, after the SAM transform (scripts/translate_template.py).
DEPLOYED_TEMPLATE := .aws-sam/lint/template.json

$(CFN_GUARD_DIR)/.installed:
	@command -v npm >/dev/null || { echo "validate: npm is needed to fetch $(CFN_GUARD_PACKAGE) (apt-get install npm)" >&2; exit 1; }
	rm -rf $(CFN_GUARD_DIR) && mkdir -p $(CFN_GUARD_DIR)
	cd $(CFN_GUARD_DIR) && npm pack --silent $(CFN_GUARD_PACKAGE) >/dev/null
	echo "$(CFN_GUARD_SHA512)  $(CFN_GUARD_DIR)/cdklabs-cdk-validator-cfnguard-0.0.62.tgz" | sha512sum --check --quiet
	tar -xzf $(CFN_GUARD_DIR)/cdklabs-cdk-validator-cfnguard-0.0.62.tgz -C $(CFN_GUARD_DIR) \
	  package/bin/ubuntu/$(shell uname -m)/cfn-guard package/rules/control-tower/cfn-guard
	rm $(CFN_GUARD_DIR)/cdklabs-cdk-validator-cfnguard-0.0.62.tgz
	$(CFN_GUARD) --version | grep -qx 'cfn-guard 3.1.1'
	@touch $@

validate: install $(CHECKOV_VENV)/.installed $(CFN_GUARD_DIR)/.installed ## sam validate --lint, cfn-lint + serverless rules, checkov, cfn-guard: template.yaml and what it deploys (offline)
	$(SAM) validate --lint
	$(BIN)/cfn-lint template.yaml -a cfn_lint_serverless.rules
	$(BIN)/cfn-lint docs/edge/cloudfront-waf.yaml
	$(CHECKOV) -f template.yaml --framework cloudformation --skip-download --compact --quiet
	$(SAM_VENV)/bin/python scripts/translate_template.py template.yaml $(DEPLOYED_TEMPLATE)
	$(BIN)/cfn-lint $(DEPLOYED_TEMPLATE) -a cfn_lint_serverless.rules --include-checks I --non-zero-exit-code informational
	$(CHECKOV) -f $(DEPLOYED_TEMPLATE) --framework cloudformation --skip-download --compact --quiet
	$(BIN)/python scripts/cfn_guard.py $(CFN_GUARD) $(CFN_GUARD_RULES) lint/cfn-guard-suppressions.yaml $(DEPLOYED_TEMPLATE)

lock: $(VENV)/.installed ## re-lock the Lambda dependencies with hashes after editing src/requirements*.txt
	$(BIN)/python scripts/lock_requirements.py

AUDIT_VENV := .venv-audit
audit: ## pip-audit the Lambda locks; exit 2 (and says so) when the vulnerability data cannot be reached
	@py=$$(scripts/find-python313.sh); $(call venv_ok,$(AUDIT_VENV)) || { rm -rf $(AUDIT_VENV); "$$py" -m venv $(AUDIT_VENV); }
	@$(AUDIT_VENV)/bin/python -m pip install --quiet pip-audit==2.10.1 || \
	  { echo "audit: pip-audit could not be installed (no package index reachable): nothing was audited" >&2; exit 2; }
	$(AUDIT_VENV)/bin/python scripts/audit_requirements.py $(AUDIT_VENV)/bin/pip-audit

build: install ## sam build (no container) into .aws-sam/
	$(SAM_PATH) $(SAM) build

test: lint typecheck pytest validate build ## everything CI runs

# BUILT=1: deploy what `make build` built, installing and building nothing (CI assumes its AWS role
# only after the build, so no package code runs with credentials).
deploy: $(if $(BUILT),,build) ## deploy ENV=default|dev|prod (guided the first time an environment has no region)
	@region=$$($(BIN)/python -c 'import sys,tomllib; c=tomllib.load(open("samconfig.toml","rb")); print(c.get(sys.argv[1],{}).get("deploy",{}).get("parameters",{}).get("region",""))' $(ENV)); \
	if [ -z "$$region" ]; then $(SAM) deploy --guided --config-env $(ENV); else $(SAM) deploy --config-env $(ENV); fi

# events/sqs-*.json go to EventsFunction, events/sweep*.json to SweepFunction, events/broker-*.json
# to TokenBrokerFunction, events/outbox-*.json to OutboxPublisherFunction, events/example-*.json to
# ExampleConsumerFunction, the others to OAuthFunction. With a container runtime (a running Docker
# engine, or as root Debian's dockerd, then run privately inside a network namespace made for the
# invoke) the real `sam local invoke` of an x86_64 build runs it against moto and the Buy with Prime
# sandbox started here, with an env file generated per invoke (devtools/sam_local/); without one,
# the same event runs in-process against moto and the sandbox (devtools/local_invoke.py).
invoke-%: install events/%.json ## invoke a function with events/NAME.json
	@rc=0; $(BIN)/python -m devtools.sam_local events/$*.json || rc=$$?; \
	if [ "$$rc" -eq 3 ]; then \
	  echo "(no container runtime: running events/$*.json in-process, against moto and the sandbox)"; \
	  $(BIN)/python scripts/invoke_local.py events/$*.json; \
	else exit "$$rc"; fi

# The real `sam local invoke` of every sample in a private dockerd (root; installs docker.io and
# debootstrap with apt-get when missing, builds the Lambda image once into .cache/sam-local/),
# each answer compared with the in-process one, and the arm64 artifacts' import smoke test under
# qemu-user-static. Also run by `make pytest` (so `make test` and CI): about 4 min warm, 7 min cold.
invoke-test: $(VENV)/.installed $(SAM_VENV)/.installed ## every sample through the real sam local invoke, against the in-process answers
	$(BIN)/pytest -q -p no:cacheprovider -m container tests/e2e/test_sam_local_invoke.py

redrive: $(VENV)/.installed ## move the DLQ's messages back to the events queue (STACK=name)
	$(BIN)/bwpctl --stack "$(STACK)" redrive

replay: $(VENV)/.installed ## re-send kept events, e.g. OUTCOME=unroutable (STACK=name)
	$(BIN)/bwpctl --stack "$(STACK)" replay $(or $(OUTCOME),unroutable)

clean: ## remove build output, caches and virtual environments
	rm -rf .aws-sam .tools .cache *.egg-info $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(AUDIT_VENV) $(LOCALSTACK_VENV) .coverage .pytest_cache .mypy_cache .ruff_cache .hypothesis .local-stack.json
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
