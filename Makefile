# payplane developer entry points. Every target installs first when needed, so on a
# fresh machine `make test` and `make run` are each one command.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
PROTO_SRC := $(shell find protos -name '*.proto')
PROTO_STAMP := gen/.stamp

.PHONY: install proto test lint run demo bench emulator clean browser

install: $(STAMP) $(PROTO_STAMP)

# The lock (requirements.lock, with hashes) pins every package; `make lock` refreshes it.
$(STAMP): requirements.lock pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip install -q --python $(PY) --require-hashes -r requirements.lock
	# Source roots go on the venv's path the way an editable install would put them.
	printf '%s\n' "$(CURDIR)/gen" "$(CURDIR)/libs" "$(CURDIR)/tools" $(addprefix $(CURDIR)/,$(wildcard services/*)) \
		> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/payplane-dev.pth"
	touch $(STAMP)

proto: $(STAMP)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTO_SRC)
	touch $(PROTO_STAMP)

$(PROTO_STAMP): $(STAMP) $(PROTO_SRC)
	$(MAKE) proto

lock:
	$(UV) pip compile pyproject.toml --extra dev --extra bench --python-version 3.11 \
		--generate-hashes -q -o requirements.lock

# Debian's chromium for the browser tests (tests/browser), installed with apt-get where it is
# available (as root, or through sudo). Elsewhere this says so and the browser tests skip,
# naming the reason; nothing is downloaded by Playwright itself.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	    || echo "make browser: could not install chromium; the browser tests will skip"; \
	else echo "make browser: no apt-get here; the browser tests will skip (they need $(CHROMIUM))"; fi

test: install browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy tools tests libs services

# The whole platform as local processes until Ctrl-C (README: "Running it locally").
# STACK_ARGS=--fresh forgets earlier runs' state in .run/.
run: install
	$(PY) -m stack $(STACK_ARGS)

# A batch of payments and refunds through the running stack; compares the books with Stripe.
demo: install
	$(PY) -m stack.demo $(DEMO_ARGS)

# The Stripe emulator alone (in memory).
emulator: install
	$(PY) -m stripe_emulator --host 127.0.0.1 --port $${PAYPLANE_EMULATOR_PORT:-12111} --rate-limit off

# Benchmarks (figures, never tests). BENCHES picks some: emulator (vs localstripe, ~15 min),
# platform (CreatePayment through the stack), fraud (decision latency), ledger (posting and
# reconciliation). PostgreSQL variants run when TEST_POSTGRES_URL is set.
BENCHES ?= emulator platform fraud ledger
bench: install
	@set -e; for b in $(BENCHES); do \
	  echo; echo "=== bench: $$b ==="; \
	  if [ "$$b" = emulator ]; then $(PY) -m bench $(BENCH_ARGS); else $(PY) -m bench.$$b; fi; \
	done

clean:
	rm -rf $(VENV) gen .pytest_cache .mypy_cache .ruff_cache
