# Recording Portal: `make run` starts the demo, `make test` runs every test. Both work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
SANDBOX_PORT ?= 8001
DEMO_PASSWORD ?= portal-demo
# honcho gives every process its own PORT (base + 100 x index): the portal's port travels as PORTAL_PORT.
PORTAL_PORT := $(PORT)
export PORT SANDBOX_PORT DEMO_PASSWORD PORTAL_PORT

.PHONY: install run test lint format check-deploy clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# A local .env with freshly generated secrets, written once; never committed.
.env:
	@$(BIN)/python -c "import secrets; from cryptography.fernet import Fernet; \
	print('DEBUG=false'); print('HTTPS=false'); print('ALLOWED_HOSTS=localhost,127.0.0.1,[::1]'); \
	print('SECRET_KEY=' + secrets.token_urlsafe(50)); print('FIELD_ENCRYPTION_KEYS=' + Fernet.generate_key().decode())" > .env
	@echo "Wrote .env with new SECRET_KEY and FIELD_ENCRYPTION_KEYS (keep it: it decrypts the stored credentials)."

run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Starting the sandbox (:$(SANDBOX_PORT)), the worker and the portal (:$(PORT)); the demo is seeded once the sandbox answers."
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Django's deployment checklist under the production environment README.md documents.
check-deploy: install
	DEBUG=false HTTPS=true ALLOWED_HOSTS=portal.example.com \
	SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	FIELD_ENCRYPTION_KEYS="$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
