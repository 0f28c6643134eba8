# stagebeam: the two commands of the README, and the tools around them.
SWIFT ?= swift
BIN := .build/release/stagebeam
DEMO_MODEL ?= Tests/Fixtures/models/llama-gqa

.PHONY: deps build demo test bench bench-model proto fixtures clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product stagebeam

# The main job on a model that ships with the checkout: a local cluster answers with stage-level
# beam search (scripts/demo.sh).
demo: build
	DEMO_MODEL=$(DEMO_MODEL) scripts/demo.sh

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Speed figures (see README "Performance"); needs the ~150M-parameter random Llama below.
BENCH_MODEL ?= bench-models/llama-150m-f32
bench: build
	$(BIN) bench --model $(BENCH_MODEL) --prompt-tokens 128 --gen-tokens 64 --batch 1,4,8 --threads 2

# Python (torch, transformers) is needed only for these two: fixtures and the bench model.
VENV := .venv
$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q "torch==2.13.0+cpu" transformers safetensors tokenizers pillow numpy

bench-model: $(VENV)/bin/python
	$(VENV)/bin/python scripts/make_bench_model.py bench-models/llama-150m-f32 --dtype f32

fixtures: $(VENV)/bin/python
	$(VENV)/bin/python scripts/fixtures/make_model_fixtures.py
	$(VENV)/bin/python scripts/fixtures/make_tokenizer_fixtures.py

proto:
	scripts/gen-proto.sh

clean:
	rm -rf .build
