#!/usr/bin/env bash
# Starts a whole stagebeam cluster on this machine: a coordinator and W generate workers plus J judge
# workers as child processes on loopback. Ctrl-C (or SIGTERM) stops them all: workers say goodbye
# first, so nothing they held is waited for.
#
#   cluster/local.sh [--model DIR] [--workers W] [--judges J] [--port P] [--dir DIR] [--journal FILE]
#                    [--max-batch B] [--threads T] [--judge-threads T] [--heartbeat-ms MS] [--liveness K]
#
# The model is --model, else $STAGEBEAM_MODEL, else the built-in models/stagebeam-shapes (a small
# LLaVA that answers questions about images of shapes, like the examples/ it is tried with below).
# With --judges 0 (the default) every worker both generates and judges. --judge-threads (default
# --threads) sizes judge workers apart: a stage's judging waits for its candidates, so on one machine
# a judge worker may use the cores the idle generate workers leave it (docs/performance.md).
# Generate workers also serve the reward role (self-reward), so --method stage-beam and swires run
# too. Logs and the journal go to --dir (default: $TMPDIR/stagebeam-local-PORT); restarting with the
# same journal resumes its jobs.
# STAGEBEAM_LOG_FORMAT=json (and STAGEBEAM_LOG_LEVEL) in the environment reach every process.
# Then, in another terminal:
#   stagebeam submit --coordinator tcp://127.0.0.1:5555 --image examples/count.png \
#     --question "How many red objects are there?" --beam 4
#   stagebeam status --coordinator tcp://127.0.0.1:5555
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
model="${STAGEBEAM_MODEL:-$root/models/stagebeam-shapes}"
workers=2
judges=0
port=5555
dir=""
journal=""
max_batch=8
threads=""
judge_threads=""
heartbeat_ms=500
liveness=3

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --judges) judges="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --journal) journal="$2"; shift 2 ;;
    --max-batch) max_batch="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --judge-threads) judge_threads="$2"; shift 2 ;;
    --heartbeat-ms) heartbeat_ms="$2"; shift 2 ;;
    --liveness) liveness="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "local.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

# The executable: $STAGEBEAM, else the release build, else the debug build.
source "$root/scripts/find-stagebeam.sh"
find_stagebeam local.sh

logs="${dir:-${TMPDIR:-/tmp}/stagebeam-local-$port}"
journal="${journal:-$logs/journal.jsonl}"
mkdir -p "$logs"
endpoint="tcp://127.0.0.1:$port"
pids=()

stop() {
  trap - INT TERM EXIT
  echo "local.sh: stopping ${#pids[@]} process(es)…" >&2
  # Workers first (they send Disconnect), then the coordinator.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$bin" coordinator --bind "$endpoint" --journal "$journal" --heartbeat-ms "$heartbeat_ms" --liveness "$liveness" \
  >"$logs/coordinator.out" 2>"$logs/coordinator.err" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening" "$logs/coordinator.out" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "local.sh: the coordinator exited:" >&2; cat "$logs/coordinator.err" >&2; exit 1; }
  sleep 0.1
done
echo "local.sh: $(cat "$logs/coordinator.out")"

start_worker() {  # id roles [threads]
  local extra=() count="${3:-$threads}"
  [[ -n "$count" ]] && extra+=(--threads "$count")
  "$bin" worker --coordinator "$endpoint" --model "$model" --worker-id "$1" --roles "$2" --max-batch "$max_batch" \
    --heartbeat-ms "$heartbeat_ms" --liveness "$liveness" "${extra[@]}" >"$logs/$1.out" 2>"$logs/$1.err" &
  pids+=($!)
  echo "local.sh: worker $1 ($2), pid $!, log $logs/$1.err"
}
generate_roles="generate,reward"
[[ "$judges" -eq 0 ]] && generate_roles="generate,judge,reward"
for i in $(seq 1 "$workers"); do start_worker "gen-$i" "$generate_roles"; done
for i in $(seq 1 "$judges"); do start_worker "judge-$i" "judge" "$judge_threads"; done

echo "local.sh: cluster at $endpoint (model $model) — Ctrl-C or SIGTERM to this script (pid $$) stops it. Try:"
echo "  $bin submit --coordinator $endpoint --image $root/examples/count.png --question \"How many red objects are there?\" --beam 4"
echo "  $bin status --coordinator $endpoint"
# Wait until a child dies or we are told to stop.
wait -n "${pids[@]}" || true
echo "local.sh: a process exited; see $logs" >&2
