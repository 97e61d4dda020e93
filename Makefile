# Two commands for a newcomer: `make run` and `make test`. Everything else is a helper.
PY_SYS ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= data/demo
CKPT   ?= checkpoints/demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: run test venv demo build lint format bench clean-demo e2e-deps

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Serves the dashboard at once and, beside it, builds the demo catalog and the models if they
# are missing (the pages show the build's progress until the models are ready).
run: venv
	MMREC_DATA=$(DATA) MMREC_CHECKPOINTS=$(CKPT) $(PY) main.py --setup

test: venv
	$(PY) -m pytest -q

demo: venv
	$(PY) -m mmrec demo --data $(DATA)

build: venv
	$(PY) -m mmrec build --data $(DATA) --checkpoints $(CKPT)

bench: venv
	$(PY) -m mmrec bench --out reports/bench.json

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

# Debian's Chromium for the browser tests (never a browser download).
e2e-deps:
	command -v chromium >/dev/null && dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji)
