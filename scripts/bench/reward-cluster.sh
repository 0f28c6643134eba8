#!/usr/bin/env bash
# stage-beam and swires on a local cluster against `stagebeam run`: for 1 and 3 workers (generate and
# reward roles, self-reward) a fresh coordinator answers QUESTIONS of examples/questions.jsonl with
# the built-in model, whose stagebeam.json gives swires its calibrated thresholds; each job's search
# record must equal the in-process one (every candidate, score, survivor and retrace). Prints one
# line per method and placement: seconds per question, scorer calls, retraces, and "same" or "DIFFERENT".
#
#   scripts/bench/reward-cluster.sh [QUESTIONS] [SEARCH_OPTIONS]
#   scripts/bench/reward-cluster.sh 3 "--candidates 4 --keep 2 --retraces 3"
#
# STAGEBEAM picks the executable (default: the release build, else the debug build).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
questions="${1:-3}" options="${2:---candidates 4 --keep 2 --retraces 3}"
source scripts/find-stagebeam.sh
find_stagebeam reward-cluster.sh
model=models/stagebeam-shapes
port="${PORT:-5850}"
dir="$(mktemp -d)"
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$dir"' EXIT

# The search record's parts that must not depend on placement (timings and worker names left out).
outcome() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r = r.get("search", r)
units = [s["units"][0] for s in r["stages"]]
print(json.dumps([r["text"], [[(c["seed"], c["raw_text"]) for c in u["candidates"]] for u in units],
                  [(u.get("scores"), u.get("parents"), u.get("survivors")) for u in units],
                  r["reward"]["retraces"]], sort_keys=True))
PY
}
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r=r.get('search', r); print(r['counts'][sys.argv[2]])" "$1" "$2"; }

head -n "$questions" examples/questions.jsonl > "$dir/questions.jsonl"
for method in stage-beam swires; do
  i=0
  while IFS= read -r line; do
    i=$((i + 1))
    question=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["question"])' "$line")
    image=examples/$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["image"])' "$line")
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$bin" run --model "$model" --image "$image" --question "$question" --method "$method" $options --seed "$i" --json \
      > "$dir/run-$method-$i.json" 2>/dev/null
    echo "$method run $i $(echo "$(date +%s.%N) - $start" | bc)" >> "$dir/seconds"
  done < "$dir/questions.jsonl"
done

for w in 1 3; do
  endpoint="tcp://127.0.0.1:$port"
  "$bin" coordinator --bind "$endpoint" --journal "$dir/journal-$w.jsonl" > "$dir/coordinator-$w.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  for ((k = 0; k < w; k++)); do
    "$bin" worker --coordinator "$endpoint" --model "$model" --worker-id "w$k" --roles generate,reward --max-batch $((4 / w > 0 ? 4 / w : 1)) \
      > "$dir/worker-$w-$k.log" 2>&1 &
    pids+=($!)
  done
  sleep 2
  for method in stage-beam swires; do
    i=0
    while IFS= read -r line; do
      i=$((i + 1))
      question=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["question"])' "$line")
      image=examples/$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["image"])' "$line")
      start=$(date +%s.%N)
      # shellcheck disable=SC2086
      "$bin" submit --coordinator "$endpoint" --image "$image" --question "$question" --method "$method" $options --seed "$i" \
        --json --record-search > "$dir/cluster$w-$method-$i.json" 2>/dev/null
      echo "$method cluster$w $i $(echo "$(date +%s.%N) - $start" | bc)" >> "$dir/seconds"
    done < "$dir/questions.jsonl"
  done
  stop_all
  port=$((port + 1))
done

printf '%-11s %-9s %9s %12s %9s  %s\n' method placement s/question score_calls retraces "record vs run"
for method in stage-beam swires; do
  for placement in run cluster1 cluster3; do
    seconds=$(awk -v m="$method" -v p="$placement" '$1 == m && $2 == p { s += $4; n++ } END { printf "%.2f", s / n }' "$dir/seconds")
    calls=0 retraces=0 same=same
    for ((i = 1; i <= questions; i++)); do
      file="$dir/$placement-$method-$i.json"
      calls=$((calls + $(field "$file" score_calls)))
      retraces=$((retraces + $(field "$file" retraces)))
      [[ "$(outcome "$file")" == "$(outcome "$dir/run-$method-$i.json")" ]] || same=DIFFERENT
    done
    printf '%-11s %-9s %9s %12s %9s  %s\n' "$method" "$placement" "$seconds" "$calls" "$retraces" "$same"
  done
done
