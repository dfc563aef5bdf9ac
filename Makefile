# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT   := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV   := $(ROOT)/.venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PYTEST := $(VENV)/bin/pytest
VAR    := $(ROOT)/var
STAMP  := $(VENV)/.installed
NPM_STAMP := $(ROOT)/frontend/node_modules/.installed

# Embedded defaults for `make run`: SQLite per service under $(RUN_DIR), a local RabbitMQ node.
# Any of them can be overridden from the environment (the default-stack test runs `make run` on
# free ports in a temporary RUN_DIR); they are passed to the app's processes only, never to the
# test suites.
RUN_DIR            ?= $(VAR)
APP_ENV            ?= development
LOG_LEVEL          ?= INFO
ADMIN_PORT         ?= 8000
MAIN_PORT          ?= 5000
SPA_PORT           ?= 8080
DEV_RABBITMQ_PORT  ?= 5672
DEV_RABBITMQ_MANAGEMENT_PORT ?= 15672
DEV_RABBITMQ_PROMETHEUS_PORT ?= 15692
DEV_RABBITMQ_EPMD_PORT       ?= 4370
ADMIN_CONSUMER_METRICS_PORT  ?= 9801
ADMIN_RELAY_METRICS_PORT     ?= 9802
DRIFT_METRICS_PORT           ?= 9803
MAIN_CONSUMER_METRICS_PORT   ?= 9811
MAIN_RELAY_METRICS_PORT      ?= 9812
ADMIN_WAKEUP_ADDR  ?= 127.0.0.1:7801
MAIN_WAKEUP_ADDR   ?= 127.0.0.1:7802
RABBITMQ_URL       ?= amqp://guest:guest@127.0.0.1:$(DEV_RABBITMQ_PORT)/%2F
ADMIN_DATABASE_URL ?= sqlite:///$(RUN_DIR)/admin.sqlite3
MAIN_DATABASE_URL  ?= sqlite:///$(RUN_DIR)/main.sqlite3
ADMIN_USERNAME     ?= admin
ADMIN_PASSWORD     ?= admin
ADMIN_EMAIL        ?= admin@example.com
DJANGO_ADMIN_URL   ?= django-admin/
CSRF_TRUSTED_ORIGINS ?= http://localhost:$(SPA_PORT),http://127.0.0.1:$(SPA_PORT)
# Operator tokens: admin signs with private.pem, main verifies with jwks.json (generated once by `prepare`).
OPERATOR_JWT_DIR   ?= $(RUN_DIR)/operator-jwt
RUN_ENV := APP_ENV=$(APP_ENV) LOG_LEVEL=$(LOG_LEVEL) RABBITMQ_URL='$(RABBITMQ_URL)' \
	ADMIN_DATABASE_URL='$(ADMIN_DATABASE_URL)' MAIN_DATABASE_URL='$(MAIN_DATABASE_URL)' \
	ADMIN_USERNAME='$(ADMIN_USERNAME)' ADMIN_PASSWORD='$(ADMIN_PASSWORD)' ADMIN_EMAIL='$(ADMIN_EMAIL)' \
	DJANGO_ADMIN_URL='$(DJANGO_ADMIN_URL)' CSRF_TRUSTED_ORIGINS='$(CSRF_TRUSTED_ORIGINS)' \
	ADMIN_PORT=$(ADMIN_PORT) MAIN_PORT=$(MAIN_PORT) SPA_PORT=$(SPA_PORT) \
	DEV_RABBITMQ_DATA_DIR='$(RUN_DIR)/rabbitmq' DEV_RABBITMQ_PORT=$(DEV_RABBITMQ_PORT) \
	DEV_RABBITMQ_MANAGEMENT_PORT=$(DEV_RABBITMQ_MANAGEMENT_PORT) \
	DEV_RABBITMQ_PROMETHEUS_PORT=$(DEV_RABBITMQ_PROMETHEUS_PORT) DEV_RABBITMQ_EPMD_PORT=$(DEV_RABBITMQ_EPMD_PORT) \
	ADMIN_CONSUMER_METRICS_PORT=$(ADMIN_CONSUMER_METRICS_PORT) ADMIN_RELAY_METRICS_PORT=$(ADMIN_RELAY_METRICS_PORT) \
	DRIFT_METRICS_PORT=$(DRIFT_METRICS_PORT) MAIN_CONSUMER_METRICS_PORT=$(MAIN_CONSUMER_METRICS_PORT) \
	MAIN_RELAY_METRICS_PORT=$(MAIN_RELAY_METRICS_PORT) \
	ADMIN_WAKEUP_ADDR=$(ADMIN_WAKEUP_ADDR) MAIN_WAKEUP_ADDR=$(MAIN_WAKEUP_ADDR) \
	OPERATOR_JWT_DIR='$(OPERATOR_JWT_DIR)' PYTHONUNBUFFERED=1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------
.PHONY: system-deps system-deps-run deps frontend-deps frontend-build
system-deps: ## install the system packages tests need (apt-get, as root on Debian)
	@$(ROOT)/.ci/system-deps test
system-deps-run:
	@$(ROOT)/.ci/system-deps run

$(STAMP): admin/requirements.txt main/requirements.txt requirements-dev.txt lib/eventbus/pyproject.toml
	@echo "==> creating $(VENV) and installing pinned Python packages"
	@test -x $(PY) || python3 -m venv $(VENV)
	@# (grep drops this machine's pip-config noise about missing local package folders)
	@set -o pipefail; $(PIP) install -q --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
	@set -o pipefail; $(PIP) install -q -r admin/requirements.txt -r main/requirements.txt -r requirements-dev.txt \
	  2>&1 | { grep -v '^WARNING: Location' || true; }
	@# The messaging core both services share, editable: a change under lib/eventbus/src is live at once.
	@set -o pipefail; $(PIP) install -q -e lib/eventbus 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

deps: $(STAMP) ## create .venv and install the pinned Python packages

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	@echo "==> installing frontend packages (npm ci)"
	@cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

frontend-deps: $(NPM_STAMP)

frontend-build: $(NPM_STAMP) ## build the SPA into frontend/dist
	@echo "==> building the SPA"
	@cd frontend && npm run --silent build

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
.PHONY: run prepare reset
prepare: system-deps-run deps frontend-build
	@mkdir -p $(RUN_DIR)
	@echo "==> the operator-token key pair (once): $(OPERATOR_JWT_DIR)"
	@cd $(ROOT) && $(PY) -m dev.operator_key '$(OPERATOR_JWT_DIR)' >/dev/null
	@echo "==> migrating the databases, creating the superuser, loading demo products"
	@cd admin && env $(RUN_ENV) LOG_LEVEL=WARNING DATABASE_URL='$(ADMIN_DATABASE_URL)' $(PY) manage.py migrate --noinput -v 0
	@cd main && env $(RUN_ENV) LOG_LEVEL=WARNING DATABASE_URL='$(MAIN_DATABASE_URL)' $(VENV)/bin/flask --app app db upgrade
	@cd admin && env $(RUN_ENV) LOG_LEVEL=WARNING DATABASE_URL='$(ADMIN_DATABASE_URL)' $(PY) manage.py ensure_superuser
	@cd admin && env $(RUN_ENV) LOG_LEVEL=WARNING DATABASE_URL='$(ADMIN_DATABASE_URL)' $(PY) manage.py seed_demo

run: prepare ## start the whole app on embedded defaults (Ctrl-C stops it)
	@echo
	@echo "  Shoppers' gallery    http://localhost:$(SPA_PORT)/"
	@echo "  Admin product pages  http://localhost:$(SPA_PORT)/admin/products   (login $(ADMIN_USERNAME) / $(ADMIN_PASSWORD))"
	@echo "  Django admin         http://localhost:$(SPA_PORT)/$(DJANGO_ADMIN_URL)"
	@echo "  Admin API            http://localhost:$(ADMIN_PORT)/api/products   (docs /api/docs, metrics /metrics)"
	@echo "  Main API             http://localhost:$(MAIN_PORT)/flask/api/products   (docs /flask/api/docs, metrics /metrics)"
	@echo "  RabbitMQ             amqp://localhost:$(DEV_RABBITMQ_PORT)   management UI http://localhost:$(DEV_RABBITMQ_MANAGEMENT_PORT) (guest / guest)"
	@echo "  Data                 $(RUN_DIR)   (make reset wipes it)"
	@echo
	@touch $(RUN_DIR)/run.env   # honcho would otherwise read ./.env, which belongs to docker compose
	@exec env $(RUN_ENV) $(VENV)/bin/honcho start -f Procfile -d $(ROOT) -e $(RUN_DIR)/run.env

reset: ## delete the data of `make run` (SQLite files, the dev RabbitMQ node)
	rm -rf $(RUN_DIR)/admin.sqlite3* $(RUN_DIR)/main.sqlite3* $(RUN_DIR)/rabbitmq $(RUN_DIR)/run.env $(OPERATOR_JWT_DIR)

# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
# Each suite runs even when an earlier one failed; the summary lines of every runner are
# repeated at the end, and the exit status is non-zero if any suite failed.
TEST_LOGS := $(VAR)/test-logs
SUITES    := check core admin main frontend cross

.PHONY: test test-check test-core test-admin test-main test-frontend test-cross test-e2e
test: system-deps deps frontend-deps ## run every suite: static checks, unit (coverage-gated), contract, integration, faults, e2e, frontend
	@mkdir -p $(TEST_LOGS); rm -f $(TEST_LOGS)/*.rc
	@for s in $(SUITES); do \
	  echo; echo "==================== suite: $$s ===================="; \
	  $(MAKE) --no-print-directory test-$$s 2>&1 | tee $(TEST_LOGS)/$$s.log; \
	  echo $${PIPESTATUS[0]} > $(TEST_LOGS)/$$s.rc; \
	done; \
	echo; echo "==================== summary ===================="; fail=0; \
	for s in $(SUITES); do \
	  rc=$$(cat $(TEST_LOGS)/$$s.rc); \
	  line=$$(sed 's/\x1b\[[0-9;]*m//g' $(TEST_LOGS)/$$s.log | grep -E '[0-9]+ (passed|failed|errors?)(, .*)? in [0-9.]+s|Tests +[0-9]+ (passed|failed)|^static checks: ' | tail -1); \
	  printf '%-9s rc=%s  %s\n' "$$s" "$$rc" "$$line"; \
	  [ "$$rc" = 0 ] || fail=1; \
	done; \
	if [ $$fail = 0 ]; then echo "all suites passed"; else echo "SOME SUITES FAILED: read $(TEST_LOGS)/<suite>.log"; fi; \
	exit $$fail

# The unit suites measure coverage as they run and fail under $(COV_MIN) % (JUnit and Cobertura
# reports under var/ for Jenkins).
COV_MIN := 80
COV_DIR := $(VAR)/coverage
REPORTS := $(VAR)/test-reports

test-check: check

test-core: deps ## the shared messaging core (lib/eventbus): unit + real-broker tests, coverage >= 80 %
	@mkdir -p $(REPORTS) $(COV_DIR)
	cd lib/eventbus && $(PYTEST) -q -p no:cacheprovider --cov=eventbus --cov-fail-under=$(COV_MIN) \
	  --cov-report=term:skip-covered --cov-report=xml:$(COV_DIR)/core.xml --junitxml=$(REPORTS)/core.xml

test-admin: deps ## admin service: unit + API tests (SQLite), coverage >= 80 %
	@mkdir -p $(REPORTS) $(COV_DIR)
	cd admin && $(PYTEST) -q --cov=. --cov-config=.coveragerc --cov-fail-under=$(COV_MIN) \
	  --cov-report=term:skip-covered --cov-report=xml:$(COV_DIR)/admin.xml --junitxml=$(REPORTS)/admin.xml

test-main: deps ## main service: unit + API tests (SQLite), coverage >= 80 %
	@mkdir -p $(REPORTS) $(COV_DIR)
	cd main && $(PYTEST) -q --cov=app --cov-config=.coveragerc --cov-fail-under=$(COV_MIN) \
	  --cov-report=term:skip-covered --cov-report=xml:$(COV_DIR)/main.xml --junitxml=$(REPORTS)/main.xml

test-frontend: frontend-deps ## frontend: Vitest, coverage >= 80 % of lines and statements
	cd frontend && npx --no-install vitest run --coverage --coverage.reportsDirectory=$(COV_DIR)/frontend

test-cross: deps frontend-build ## cross-service: contract, integration, faults, e2e, deploy, observability (real servers)
	cd tests && $(PYTEST) -q

test-e2e: deps frontend-build ## browser end-to-end tests only
	cd tests && $(PYTEST) -q e2e

# ---------------------------------------------------------------------------------------------
# Benchmarks, lint, checks (also called by the Jenkinsfile)
# ---------------------------------------------------------------------------------------------
.PHONY: bench lint screenshots
bench: system-deps deps ## benchmarks: like throughput, propagation latency, drain rate (prints figures)
	@set -e; for b in tests/load/bench_*.py; do echo "==> $$b"; $(PY) $$b; done

lint: check ## alias of `make check` (the Jenkinsfile calls it)

test-unit: test-core test-admin test-main test-frontend ## the per-service unit suites (no servers)

test-integration: deps frontend-build ## cross-service suites on real servers, browser e2e excluded
	cd tests && $(PYTEST) -q --ignore=e2e

migrations-check: deps ## fail when a model change has no committed migration
	cd admin && DATABASE_URL=sqlite:///$(VAR)/check-admin.sqlite3 $(PY) manage.py makemigrations --check --dry-run
	@mkdir -p $(VAR); rm -f $(VAR)/check-main.sqlite3
	cd main && DATABASE_URL=sqlite:///$(VAR)/check-main.sqlite3 $(VENV)/bin/flask --app app db upgrade \
	  && DATABASE_URL=sqlite:///$(VAR)/check-main.sqlite3 $(VENV)/bin/flask --app app db check

coverage: test-unit ## the unit suites with their coverage gates and reports (var/coverage, var/test-reports)

# Dummy production settings: `check --deploy` only needs them to be present and well-formed.
CHECK_DEPLOY_ENV := APP_ENV=production \
	SECRET_KEY=check-deploy-dummy-value-not-used-anywhere-0123456789abcdefghijklmnop \
	DATABASE_URL=sqlite:///$(VAR)/check-deploy.sqlite3 \
	RABBITMQ_URL=amqps://broker.invalid:5671/%2F \
	ALLOWED_HOSTS=admin.example.com CSRF_TRUSTED_ORIGINS=https://admin.example.com LOG_LEVEL=WARNING \
	OPERATOR_JWT_PRIVATE_KEY_FILE=$(VAR)/check-operator-jwt/private.pem

.PHONY: check
check: deps frontend-deps ## static checks: ruff, eslint + tsc, dashboards, bandit (medium and up), secrets scan, Django deploy checks
	$(VENV)/bin/ruff check admin main tests grafana-prometheus dev lib
	cd frontend && npm run --silent lint && npm run --silent typecheck
	$(PY) grafana-prometheus/build_dashboards.py --check
	$(VENV)/bin/bandit -q -r admin main lib -x '*/tests/*,*/migrations/*,*/node_modules/*' -ll
	$(PY) .ci/secrets-scan
	@mkdir -p $(VAR)
	@cd $(ROOT) && $(PY) -m dev.operator_key $(VAR)/check-operator-jwt >/dev/null
	cd admin && $(CHECK_DEPLOY_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	@echo "static checks: all passed"

# ---------------------------------------------------------------------------------------------
# Images and deployment (Jenkins; need a Docker engine)
# ---------------------------------------------------------------------------------------------
IMAGE_REGISTRY ?= localhost/microservices
IMAGE_TAG      ?= dev
IMAGES         := admin main frontend
.PHONY: images push pin-images security security-deps security-code security-config security-images deploy-staging deploy-production
images: ## build the three images (Docker engine needed)
	@# admin and main build from the repository root, for the shared messaging core (lib/eventbus)
	@for i in admin main; do docker build -f $$i/Dockerfile -t $(IMAGE_REGISTRY)/$$i:$(IMAGE_TAG) . || exit 1; done
	docker build -t $(IMAGE_REGISTRY)/frontend:$(IMAGE_TAG) frontend

push: ## push the images (REGISTRY_USER, REGISTRY_PASSWORD)
	@echo "$$REGISTRY_PASSWORD" | docker login -u "$$REGISTRY_USER" --password-stdin $(firstword $(subst /, ,$(IMAGE_REGISTRY)))
	@for i in $(IMAGES); do docker push $(IMAGE_REGISTRY)/$$i:$(IMAGE_TAG) || exit 1; done

# Every scan fails on a finding; reviewed exceptions live beside what they excuse (a `# nosec <id> -
# reason` in the code, .secrets.baseline, .trivyignore), never in a flag that hides a severity.
security: security-deps security-code security-config security-images ## every scan below (Jenkins runs each as its own step)

security-deps: deps frontend-deps ## known vulnerabilities in the pinned Python and npm packages
	@mkdir -p $(VAR)/security
	$(VENV)/bin/pip install -q pip-audit==2.10.1
	$(VENV)/bin/pip-audit -r admin/requirements.txt -r main/requirements.txt -f json -o $(VAR)/security/pip-audit.json
	cd frontend && npm audit --omit=dev

security-code: deps ## bandit at medium severity and above, and the secrets scan against its reviewed baseline
	@mkdir -p $(VAR)/security
	$(VENV)/bin/bandit -q -r admin main lib -x '*/tests/*,*/migrations/*,*/node_modules/*' -ll
	$(PY) .ci/secrets-scan

security-config: ## misconfigurations in the Dockerfiles and docker-compose.yml (trivy config)
	@mkdir -p $(VAR)/security
	trivy config --exit-code 1 --severity HIGH,CRITICAL --ignorefile .trivyignore .

security-images: ## every image compose runs, third-party ones included (trivy image)
	@mkdir -p $(VAR)/security
	@images="$$(IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) docker compose --env-file .env.example config --images | sort -u)"; \
	test -n "$$images" || { echo "compose lists no image"; exit 1; }; \
	status=0; for image in $$images; do \
	  echo "==> trivy image $$image"; \
	  trivy image --exit-code 1 --severity HIGH,CRITICAL --ignorefile .trivyignore "$$image" || status=1; \
	done; exit $$status

pin-images: deps ## pin every third-party image to its digest (needs Docker Hub: run where it is reachable, review, commit)
	$(PY) -m dev.pin_images

deploy-staging deploy-production: ## roll the stack out with the environment's .env (DEPLOY_ENV_FILE)
	@test -n "$$DEPLOY_ENV_FILE" || { echo "DEPLOY_ENV_FILE must name the environment's .env file"; exit 1; }
	IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) docker compose --env-file "$$DEPLOY_ENV_FILE" -p microservices-$(@:deploy-%=%) up -d --no-build --wait

screenshots: deps frontend-build ## refresh the README's screenshots (browser e2e run)
	cd tests && UPDATE_SCREENSHOTS=1 $(PYTEST) -q e2e -k screenshots
