#!/usr/bin/env bash
# Seconds per GB of `stagebeam model-id` (SHA-256 of every byte of a model, all cores), cold (the
# weights evicted from the page cache first) and warm, without the digest cache. Usage:
#   scripts/bench/model-identity.sh [SIZE_GB] [MODEL_DIR]
# Without MODEL_DIR it hashes a model of SIZE_GB (default 2) random bytes written to a temporary
# directory. "Cold" evicts the files from this machine's page cache (dd iflag=nocache); a virtual
# machine's host may still hold them.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_gb=${1:-2}
model=${2:-}
# The hashing runs in libcrypto, so a debug build (STAGEBEAM_BIN=.build/debug/stagebeam) times the same.
bin=${STAGEBEAM_BIN:-.build/release/stagebeam}
[[ -n "${STAGEBEAM_BIN:-}" ]] || swift build -c release --product stagebeam >/dev/null
if [[ -z "$model" ]]; then
  model=$(mktemp -d)
  trap 'rm -rf "$model"' EXIT
  head -c $((size_gb * 1000 * 1000 * 1000)) /dev/urandom >"$model/model.safetensors"
  echo '{"model_type": "llama"}' >"$model/config.json"
fi
bytes=$(find -L "$model" -maxdepth 1 -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
evict() { find -L "$model" -maxdepth 1 -type f -exec dd if={} iflag=nocache count=0 status=none \;; }
run() { "$bin" model-id --model "$model" --no-cache 2>&1 >/dev/null | awk '{ print $1 }'; }
evict
cold=$(run)
warm=$(run)
warm2=$(run)
awk -v b="$bytes" -v c="$cold" -v w="$warm" -v w2="$warm2" -v cores="$(nproc)" 'BEGIN {
  gb = b / 1e9
  printf "%.2f GB on %d cores: cold %.2f s (%.2f s/GB), warm %.2f s and %.2f s (%.2f s/GB)\n", gb, cores, c, c / gb, w, w2, (w < w2 ? w : w2) / gb
}'
