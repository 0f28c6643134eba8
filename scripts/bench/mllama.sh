#!/usr/bin/env bash
# Speed and memory of Llama 3.2 Vision on this machine: a random bf16 checkpoint with Llama 3.2 1B's
# decoder shape plus 4 cross-attention layers and a reduced vision encoder (made once by
# scripts/fixtures/make_mllama_fixtures.py --bench-model), served from its mapped bf16 weights.
# Reports image encoding time, prefill and batched decode tokens/s, and peak resident memory
# (`stagebeam bench --image`). Usage:
#   scripts/bench/mllama.sh [THREADS] [extra bench options, e.g. --batch 1,2,4 --gen-tokens 32]
set -euo pipefail
cd "$(dirname "$0")/../.."
model=bench-models/mllama-1b-bf16
threads=${1:-2}
shift || true
[ -f "$model/model.safetensors" ] || .venv/bin/python scripts/fixtures/make_mllama_fixtures.py --bench-model "$model"
swift build -c release --product stagebeam >/dev/null
.build/release/stagebeam bench --model "$model" --image "$model/image.png" --threads "$threads" \
  --prompt-tokens 128 --gen-tokens 32 --batch 1,4 "$@"
