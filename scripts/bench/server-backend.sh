#!/usr/bin/env bash
# Stage search (N = BEAM) through llama.cpp's llama-server against stagebeam's own engine, on the
# same GGUF file and machine, from one run: for each backend a coordinator and one worker, then
# `stagebeam loadtest` with JOBS jobs at CONCURRENCY in flight. Prints jobs/s and latency p50/p95
# per backend (the loadtest reports are written under the printed directory).
#   engine       stagebeam worker on its own engine (--threads THREADS)
#   server-1     worker --backend openai on llama-server -np 1 (deterministic: one request at a time)
#   server-B     worker --backend openai on llama-server -np BEAM (a stage's candidates decoded together)
#
#   scripts/bench/server-backend.sh MODEL.gguf
#   env: BEAM (4), TOKENS (max stage tokens, 32), JOBS (4), CONCURRENCY (1), THREADS (2),
#        TEMPLATE (a chat template file, for a GGUF without one), LLAMA_SERVER, STAGEBEAM (binaries;
#        see scripts/llama-server.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,14p' "$0"; exit 64; }
model="$1"
beam=${BEAM:-4}
tokens=${TOKENS:-32}
jobs=${JOBS:-4}
concurrency=${CONCURRENCY:-1}
threads=${THREADS:-2}
template=()
[[ -n "${TEMPLATE:-}" ]] && template=(--chat-template "$TEMPLATE")
server_bin="$("$root/scripts/llama-server.sh")"
source "$root/scripts/find-stagebeam.sh"
find_stagebeam server-backend.sh
dir="$(mktemp -d "${TMPDIR:-/tmp}/stagebeam-bench-server-XXXXXX")"
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; pids=(); sleep 1; }
trap stop_all EXIT
echo "model $model · beam $beam · $tokens tokens per stage · $jobs jobs, $concurrency in flight · $threads threads · $(nproc) cores · reports in $dir"

run_case() { # name worker-arguments...
  local name=$1; shift
  local port=$(( 20000 + RANDOM % 20000 ))
  local endpoint="tcp://127.0.0.1:$port"
  "$bin" coordinator --bind "$endpoint" --journal "$dir/$name-journal.jsonl" --request-timeout-s 600 \
    >/dev/null 2>"$dir/$name-coordinator.log" &
  pids+=($!)
  sleep 1
  "$bin" worker --connect "$endpoint" --model "$model" "${template[@]}" --worker-id "$name" "$@" >/dev/null 2>"$dir/$name-worker.log" &
  pids+=($!)
  sleep 3
  "$bin" loadtest --coordinator "$endpoint" --concurrency "$concurrency" --requests "$jobs" --method stage --beam "$beam" \
    --max-stage-tokens "$tokens" --tournament bracket --seed 1 --output "$dir/$name" >"$dir/$name-loadtest.txt" 2>"$dir/$name-loadtest.log"
  python3 - "$dir/$name.json" "$name" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
tokens = run["candidate_tokens_per_second"]
print(f"{sys.argv[2]:10s} jobs/s {run['jobs_per_second']:.3f} · latency p50 {run['latency']['p50']:.2f} s, p90 {run['latency']['p90']:.2f} s · "
      f"candidate tokens/s {tokens:.1f} · succeeded {run['succeeded']}/{run['requests']}")
EOF
  stop_all
}

start_server() { # slots
  local port=$(( 20000 + RANDOM % 20000 ))
  "$server_bin" -m "$model" --host 127.0.0.1 --port "$port" -np "$1" -t "$threads" -c $(( 4096 * $1 )) --no-webui --cache-ram 0 \
    >"$dir/llama-server-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
  server_url="http://127.0.0.1:$port"
}

run_case engine --threads "$threads" --max-batch 8
start_server 1
run_case server-1 --backend openai --backend-url "$server_url"
start_server "$beam"
run_case "server-$beam" --backend openai --backend-url "$server_url"
