# stagebeam: the two commands of the README, and the tools around them.
SWIFT ?= swift
BIN := .build/release/stagebeam
DEMO_MODEL ?= models/stagebeam-shapes

.PHONY: deps build demo test lint format proto-check proto-c-check eval bench bench-model proto fixtures dataset model self-judge clean

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

# Layout is swift-format's (.swift-format); CI fails on any difference. Generated code is left as generated.
SWIFT_SOURCES = $(shell git ls-files '*.swift' | grep -v '/Generated/')
lint:
	@$(SWIFT) format lint --strict --parallel $(SWIFT_SOURCES) && echo "lint: the layout is swift-format's"

format:
	$(SWIFT) format --in-place --parallel $(SWIFT_SOURCES)

# Accuracy of greedy, best-of-N, sentence- and stage-level search on the held-out set (models/stagebeam-shapes/README.md, "Results"):
# stage search with the model's recommended settings (the reasoning stage alone), then at every stage.
# The built-in model judges in generate mode: it was trained to write a short check before its verdict,
# and writes it greedily (measured on the validation split with the step-4,600 model, stage search at
# N=4: 53.7% with greedy checks, 48.0% with checks sampled at the candidates' 0.6; greedy decoding 52.3%).
# The sentence method's judge prompts compare partial stages, for which the model never learned a
# written check, so it runs with logprob verdicts.
eval: build
	$(BIN) eval --methods greedy,stage,best-of-n
	$(BIN) eval --methods stage --search-stages summary,caption,reasoning,conclusion --temperature 0.6 --no-judge-pairs
	$(BIN) eval --methods sentence --beam 4 --judge-mode logprob --no-judge-pairs

# Speed figures (docs/performance.md); needs the ~150M-parameter random Llama below.
BENCH_MODEL ?= bench-models/llama-150m-f32
bench: build
	$(BIN) bench --model $(BENCH_MODEL) --prompt-tokens 128 --gen-tokens 64 --batch 1,4,8 --threads 2

# Python (torch, transformers) is needed only below: fixtures, the bench model, and training the
# built-in model (CPU: about 3.5 hours on 2 cores; a CUDA device is used when present).
VENV := .venv
$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q "torch==2.13.0+cpu" transformers safetensors tokenizers pillow numpy pandas gguf sentencepiece accelerate

bench-model: $(VENV)/bin/python
	$(VENV)/bin/python scripts/make_bench_model.py bench-models/llama-150m-f32 --dtype f32

# Every fixture under Tests/Fixtures, from the scripts that made it (transformers, tokenizers, Pillow).
FIXTURE_SCRIPTS = $(sort $(wildcard scripts/fixtures/*.py))
# (make_mllama_quantized_fixtures.py runs the stagebeam just built: it checks what `quantize` writes.)
fixtures: $(VENV)/bin/python build
	set -e; for script in $(FIXTURE_SCRIPTS); do echo "$$script"; STAGEBEAM=.build/release/stagebeam $(VENV)/bin/python $$script; done

dataset: $(VENV)/bin/python
	$(VENV)/bin/python training/dataset.py --out datasets/shapes --examples examples

# The shipped tokenizer is part of the recipe: it was built on the corpus of step 4,600, whose
# wording has changed since, so a tokenizer built on today's corpus would have other ids.
model: $(VENV)/bin/python
	$(VENV)/bin/python training/train.py --tokenizer models/stagebeam-shapes/tokenizer.json --out models/stagebeam-shapes
	$(VENV)/bin/python training/reference.py --model models/stagebeam-shapes --out Tests/Fixtures/builtin/reference.json

# Second phase (training/self_judge.py): judge verdicts on the model's own graded samples. Not applied
# to the shipped model (training/HISTORY.md, "Tried and not shipped").
self-judge: $(VENV)/bin/python
	$(VENV)/bin/python training/self_judge.py --model models/stagebeam-shapes

proto:
	scripts/gen-proto.sh

# The committed generated code is exactly what the schema generates (needs protoc; CI runs it).
proto-check:
	scripts/gen-proto.sh --check

# The schema compiles with protoc-c as Debian ships it (protobuf-c 1.4, no proto3 `optional`), for C clients.
proto-c-check:
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && protoc-c --proto_path=proto --c_out="$$out" proto/stagebeam.proto && echo "proto-c-check: proto/stagebeam.proto compiles with $$(protoc-c --version | head -1)"

clean:
	rm -rf .build
