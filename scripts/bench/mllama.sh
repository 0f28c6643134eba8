#!/usr/bin/env bash
# Speed and memory of Llama 3.2 Vision on this machine: a random bf16 checkpoint with Llama 3.2 1B's
# decoder shape plus 4 cross-attention layers and a reduced vision encoder (made once by
# scripts/fixtures/make_mllama_fixtures.py --bench-model), served from its mapped bf16 weights or
# quantized (`stagebeam quantize`, made once per type into bench-models/mllama-1b-TYPE). Reports image
# encoding time, prefill and batched decode tokens/s, and peak resident memory
# (`stagebeam bench --image`). Usage:
#   scripts/bench/mllama.sh [THREADS] [TYPES] [extra bench options, e.g. --batch 1,2,4 --gen-tokens 32]
#     TYPES  comma-separated: bf16 (the checkpoint itself) or a quantize type (q8_0, q4_K_M, …); bf16 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
source=bench-models/mllama-1b-bf16
threads=${1:-2}
types=${2:-bf16}
shift 2 || shift $# || true
[ -f "$source/model.safetensors" ] || .venv/bin/python scripts/fixtures/make_mllama_fixtures.py --bench-model "$source"
swift build -c release --product stagebeam >/dev/null
IFS=, read -r -a wanted <<<"$types"
for type in "${wanted[@]}"; do
  model=$source
  if [ "$type" != bf16 ]; then
    model=bench-models/mllama-1b-$(echo "$type" | tr A-Z a-z)
    [ -f "$model/model.gguf" ] || .build/release/stagebeam quantize --model "$source" --type "$type" --output "$model"
  fi
  echo "== $type"
  .build/release/stagebeam bench --model "$model" --image "$source/image.png" --threads "$threads" \
    --prompt-tokens 128 --gen-tokens 32 --batch 1,4 "$@"
done
