#!/usr/bin/env bash
# Soak: a local cluster (a coordinator and W workers on loopback, the test model as cluster/local.sh
# runs it) loaded at ~80% of its measured capacity for DURATION, while random faults land every few
# seconds: a worker SIGKILLed (restarted a second later), the coordinator SIGKILLed (restarted on its
# port and journal a second later), or a volley of hostile frames (stagebeam probe fuzz). Every job
# is a `stagebeam submit` process with its own id, asking one of a few questions with a fixed seed,
# so its answer must equal `stagebeam run` of the same question and seed.
# Prints jobs submitted / answered / failed / lost (no answer by the end), answers differing from
# `run`, faults injected, the coordinator's resident memory at the start and the end of the soak
# (VmRSS; the same process unless it was killed) and its peak (VmHWM, over its restarts).
# --faults picks the kinds of fault (default all three: worker,coordinator,frames); without
# `coordinator`, one coordinator process serves the whole soak, so its memory at start and end compare.
#
#   scripts/soak.sh DURATION [--workers 2] [--fault-every-s 8] [--seed 1] [--faults worker,coordinator,frames]
#   (DURATION: 90s, 10m, 1h)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,15p' "$0"; exit 64; }
duration="$1"; shift
workers=2
fault_every=8
seed=1
fault_kinds=worker,coordinator,frames
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --fault-every-s) fault_every="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --faults) fault_kinds="$2"; shift 2 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
case "$duration" in
  *h) seconds=$(( ${duration%h} * 3600 )) ;;
  *m) seconds=$(( ${duration%m} * 60 )) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$duration ;;
esac
RANDOM=$seed
IFS=, read -r -a faults <<<"$fault_kinds"
for kind in "${faults[@]}"; do
  case "$kind" in worker|coordinator|frames) ;; *) echo "soak.sh: unknown fault $kind (worker, coordinator, frames)" >&2; exit 64 ;; esac
done

source "$root/scripts/find-stagebeam.sh"
find_stagebeam soak.sh
model="$root/Tests/Fixtures/models/llama-gqa"
dir="$(mktemp -d "${TMPDIR:-/tmp}/stagebeam-soak-XXXXXX")"
mkdir -p "$dir/jobs" "$dir/reference"
port=$(( 20000 + RANDOM % 20000 ))
endpoint="tcp://127.0.0.1:$port"
questions=("How many legs does a spider have?" "What colour is the sky on a clear day?" "Which is larger, 7 or 12?" "Name a fruit that is yellow.")
seeds=(1 2 3)
search=(--beam 2 --max-stage-tokens 8)

coordinator=""
worker_pids=()
peak_kb=0
rss_mb() { # the coordinator's resident memory now, in MB
  awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$coordinator/status" 2>/dev/null || echo "?"
}
note_peak() {
  local kb
  kb=$(awk '/VmHWM/ {print $2}' "/proc/$coordinator/status" 2>/dev/null || echo 0)
  (( kb > peak_kb )) && peak_kb=$kb
  return 0
}
start_coordinator() {
  "$bin" coordinator --bind "$endpoint" --journal "$dir/journal.jsonl" --heartbeat-ms 200 --liveness 5 \
    --max-queued-jobs 256 >>"$dir/coordinator.out" 2>>"$dir/coordinator.err" &
  coordinator=$!
}
start_worker() {
  "$bin" worker --coordinator "$endpoint" --model "$model" --worker-id "w$1" --roles generate,judge --max-batch 8 \
    --heartbeat-ms 200 --liveness 5 >>"$dir/worker$1.out" 2>>"$dir/worker$1.err" &
  worker_pids[$1]=$!
}
cleanup() {
  for pid in "${worker_pids[@]}" $coordinator; do kill -TERM "$pid" 2>/dev/null || true; done
  jobs -p | xargs -r kill -TERM 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "reference answers: stagebeam run for ${#questions[@]} questions × ${#seeds[@]} seeds…"
for q in "${!questions[@]}"; do
  for s in "${seeds[@]}"; do
    "$bin" run --model "$model" --json --question "${questions[q]}" --seed "$s" "${search[@]}" >"$dir/reference/$q-$s.json" 2>/dev/null
  done
done

start_coordinator
sleep 1
for i in $(seq "$workers"); do start_worker "$i"; done
sleep 3

submit() { # index question seed
  # A client waits out coordinator restarts (it resubmits to the new one) instead of giving up.
  "$bin" submit --coordinator "$endpoint" --json --record-search --job-id "soak-$1" --question "${questions[$2]}" --seed "$3" \
    --connect-timeout-s 600 "${search[@]}" >"$dir/jobs/$1-$2-$3.json" 2>"$dir/jobs/$1.err"
}

# Capacity: 16 jobs, 8 at a time, no faults.
started=$(date +%s.%N)
for round in 0 1; do
  pids=()
  for i in $(seq $(( round * 8 )) $(( round * 8 + 7 ))); do
    submit "cap$i" $(( i % ${#questions[@]} )) "${seeds[$(( i % ${#seeds[@]} ))]}" &
    pids+=($!)
  done
  wait "${pids[@]}"
done
capacity=$(python3 -c "import time; print(16 / (time.time() - $started))")
rate=$(python3 -c "print(0.8 * $capacity)")
interval=$(python3 -c "print(1 / $rate)")
printf 'capacity %.2f jobs/s; soaking at %.2f jobs/s for %s s with a fault (%s) every ~%s s\n' "$capacity" "$rate" "$seconds" \
  "$fault_kinds" "$fault_every"
rss_start=$(rss_mb)
coordinator_start=$coordinator

end=$(( $(date +%s) + seconds ))
next_fault=$(( $(date +%s) + fault_every ))
submitted=0
faults_worker=0
faults_coordinator=0
faults_frames=0
while (( $(date +%s) < end )); do
  q=$(( RANDOM % ${#questions[@]} ))
  s=${seeds[$(( RANDOM % ${#seeds[@]} ))]}
  submit "$submitted" "$q" "$s" &
  submitted=$(( submitted + 1 ))
  if (( $(date +%s) >= next_fault )); then
    case "${faults[$(( RANDOM % ${#faults[@]} ))]}" in
      worker)
        w=$(( 1 + RANDOM % workers ))
        kill -KILL "${worker_pids[$w]}" 2>/dev/null || true
        faults_worker=$(( faults_worker + 1 ))
        sleep 1
        start_worker "$w" ;;
      coordinator)
        note_peak
        kill -KILL "$coordinator" 2>/dev/null || true
        wait "$coordinator" 2>/dev/null || true
        faults_coordinator=$(( faults_coordinator + 1 ))
        sleep 1
        start_coordinator ;;
      frames)
        "$bin" probe fuzz --coordinator "$endpoint" --frames 5000 --peers 2 --check-every 5000 --seed "$RANDOM" \
          >>"$dir/fuzz.jsonl" 2>>"$dir/fuzz.err" &
        faults_frames=$(( faults_frames + 1 )) ;;
    esac
    next_fault=$(( $(date +%s) + fault_every / 2 + RANDOM % fault_every ))
  fi
  sleep "$interval"
done

echo "waiting for the last answers (at most 300 s)…"
for _ in $(seq 300); do
  pgrep -f -- "--job-id soak-" >/dev/null || break
  sleep 1
done
note_peak
rss_end=$(rss_mb)
kill -0 "$coordinator" 2>/dev/null && coordinator_alive=yes || coordinator_alive=no
[[ "$coordinator" == "$coordinator_start" ]] && same_process="the same process" || same_process="a later process (restarted)"

python3 - "$dir" "$submitted" <<'PY'
import json, os, sys
dir, submitted = sys.argv[1], int(sys.argv[2])
answered = failed = lost = differing = 0
journal = open(f"{dir}/journal.jsonl").read()
for name in os.listdir(f"{dir}/jobs"):
    if not name.endswith(".json") or name.startswith("cap"):
        continue
    index, q, s = name[:-5].split("-")
    try:
        result = json.load(open(f"{dir}/jobs/{name}"))
    except Exception:
        lost += 1
        accepted = f'"job_id":"soak-{index}"' in journal
        print(f"no answer for soak-{index} ({'accepted' if accepted else 'never accepted'}): {open(f'{dir}/jobs/{index}.err').read().strip()[-300:]}")
        continue
    if result.get("status") != "succeeded":
        failed += 1
        continue
    answered += 1
    reference = json.load(open(f"{dir}/reference/{q}-{s}.json"))
    if result.get("search", {}).get("text") != reference.get("text"):
        differing += 1
print(f"jobs submitted {submitted} · answered {answered} · failed {failed} · lost {lost} · differing from run {differing}")
PY
echo "faults: $faults_worker worker kills, $faults_coordinator coordinator kills, $faults_frames volleys of 5,000 hostile frames"
echo "coordinator RSS: $rss_start MB when the soak started, $rss_end MB at the end ($same_process)"
echo "coordinator peak RSS: $(( peak_kb / 1024 )) MB (VmHWM, highest over its restarts) · running at the end: $coordinator_alive"
echo "logs: $dir"
