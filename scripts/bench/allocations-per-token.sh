#!/usr/bin/env bash
# Counts heap allocations per decode step: runs the same generation twice, 200 tokens apart, under
# an LD_PRELOAD malloc counter, and prints the difference per step. Usage:
#   scripts/bench/allocations-per-token.sh [MODEL_DIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:-Tests/Fixtures/models/llama-gqa}
threads=${2:-2}
out=$(mktemp -d)
gcc -O2 -shared -fPIC scripts/bench/malloc-counter.c -o "$out/counter.so" -ldl
swift build -c release --product stagebeam >/dev/null
count() {
  LD_PRELOAD="$out/counter.so" .build/release/stagebeam generate --model "$model" --prompt "Hello world" --raw \
    --max-tokens "$1" --temperature 0.7 --ignore-eos --n 4 --threads "$threads" 2>&1 >/dev/null |
    grep -a -o "MALLOC_COUNT [0-9]*" | cut -d' ' -f2
}
short=$(count 20)
long=$(count 220)
echo "allocations: 20 tokens $short, 220 tokens $long → $(( (long - short) / 200 )) per decode step of 4 samples"
