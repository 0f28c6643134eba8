#!/usr/bin/env bash
# The main job, end to end on this machine: a local cluster (a coordinator, two generate workers and
# a judge worker, as separate processes on loopback), one question answered with stage-level beam
# search (beam 4, bracket tournaments) streamed as it runs, the cluster's status, then shutdown.
# The model is a tiny random checkpoint shipped with the tree, so the text itself is noise: the
# demo shows the machinery. (The trained built-in model is issue #5.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.build/release/stagebeam"
model="${DEMO_MODEL:-$root/Tests/Fixtures/models/llama-gqa}"
port="${DEMO_PORT:-$((20000 + RANDOM % 20000))}"
dir="$(mktemp -d)"

STAGEBEAM="$bin" "$root/cluster/local.sh" --model "$model" --workers 2 --judges 1 --max-batch 2 --threads 1 \
  --port "$port" --dir "$dir" >"$dir/cluster.log" 2>&1 &
cluster=$!
trap 'kill -TERM $cluster 2>/dev/null; wait $cluster 2>/dev/null || true' EXIT

# Wait until the three workers have joined.
for _ in $(seq 300); do
  workers=$("$bin" status --coordinator "tcp://127.0.0.1:$port" --json --timeout-s 2 2>/dev/null |
    grep -o '"workerId"' | wc -l || true)
  [[ "$workers" -ge 3 ]] && break
  kill -0 $cluster 2>/dev/null || { cat "$dir/cluster.log"; exit 1; }
  sleep 0.2
done

echo "== cluster on tcp://127.0.0.1:$port: coordinator, 2 generate workers (2 credits each), 1 judge"
"$bin" submit --coordinator "tcp://127.0.0.1:$port" \
  --question "How many red circles are left if one is removed?" \
  --beam 4 --tournament bracket --max-stage-tokens 24 --seed 1
echo
echo "== status"
"$bin" status --coordinator "tcp://127.0.0.1:$port"
