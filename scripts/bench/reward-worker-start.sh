#!/usr/bin/env bash
# Start time and memory of reward workers: seconds from launch until the worker hears that its
# coordinator registered it, and its peak resident memory (VmHWM) then; the median of RUNS starts.
# Three workers: reward-only with a reward model (--roles reward --reward-model REWARD --model POLICY:
# the policy model is not needed), the same command on the BEFORE build when one is given (e.g. a
# build that still loaded the policy model there), and self-reward (--roles reward --model POLICY,
# which needs the policy model).
#
#   scripts/bench/reward-worker-start.sh [RUNS]
#   POLICY=bench-models/llama-135m-deep-f32 BEFORE=/tmp/stagebeam-before scripts/bench/reward-worker-start.sh 5
#
# POLICY defaults to the built-in models/stagebeam-shapes, REWARD to models/stagebeam-shapes-reward;
# STAGEBEAM picks the executable (default: the release build, else the debug build). THREADS: 2.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
runs="${1:-5}"
source scripts/find-stagebeam.sh
find_stagebeam reward-worker-start.sh
policy="${POLICY:-models/stagebeam-shapes}" reward="${REWARD:-models/stagebeam-shapes-reward}" threads="${THREADS:-2}"
dir="$(mktemp -d)"
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$dir"' EXIT

port="${PORT:-5870}"
endpoint="tcp://127.0.0.1:$port"
"$bin" coordinator --bind "$endpoint" --journal "$dir/journal.jsonl" --heartbeat-ms 100 > "$dir/coordinator.log" 2>&1 &
pids+=($!)
sleep 0.5

# measure LABEL EXECUTABLE ARGS...: prints "LABEL median-seconds median-peak-MiB".
measure() {
  local label="$1" executable="$2"
  shift 2
  local seconds=() peaks=()
  for ((r = 0; r < runs; r++)); do
    local log="$dir/$label-$r.log" start pid
    : > "$log"
    start=$(date +%s.%N)
    "$executable" worker --coordinator "$endpoint" --worker-id "$label-$r" --heartbeat-ms 100 --threads "$threads" \
      --log-format json "$@" > "$log" 2>&1 &
    pid=$!
    until grep -q '"msg":"registered"' "$log"; do
      kill -0 "$pid" 2>/dev/null || { echo "$label: the worker exited: $(tail -3 "$log")" >&2; exit 1; }
      sleep 0.01
    done
    seconds+=("$(echo "$(date +%s.%N) - $start" | bc)")
    peaks+=("$(awk '/VmHWM/ { print $2 / 1024 }' "/proc/$pid/status")")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
  printf '%s %s %s\n' "$label" "$(printf '%s\n' "${seconds[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" \
    "$(printf '%s\n' "${peaks[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
}

{
  measure reward-only "$bin" --roles reward --reward-model "$reward" --model "$policy"
  if [[ -n "${BEFORE:-}" ]]; then measure reward-only-before "$BEFORE" --roles reward --reward-model "$reward" --model "$policy"; fi
  measure self-reward "$bin" --roles reward --model "$policy"
} > "$dir/results"

echo "policy $policy · reward model $reward · $threads threads · median of $runs starts · $bin"
printf '%-20s %14s %14s\n' worker "start s" "peak RSS MiB"
while read -r label seconds peak; do printf '%-20s %14.2f %14.1f\n' "$label" "$seconds" "$peak"; done < "$dir/results"
