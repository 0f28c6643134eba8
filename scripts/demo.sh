#!/usr/bin/env bash
# The main job, end to end on this machine: a local cluster (a coordinator, two generate workers and
# a judge worker, as separate processes on loopback) answers the bundled example questions about the
# bundled example images (examples/) with stage-level beam search (beam 4 at every stage, bracket
# tournaments, written verdicts) using the built-in model (models/stagebeam-shapes, trained by
# training/train.py). The model's recommended setting searches the reasoning stage only (as accurate
# on its held-out questions in under half the time, docs/search-methods.md); the demo shows all four.
# Each answer streams its stages and tournament matches as they happen, then prints the staged
# answer and its timings.
# The cluster's logs and journal go to a temporary directory, named in the output; it is removed at
# the end unless the demo fails (then it is kept for reading) or DEMO_DIR names a directory to use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.build/release/stagebeam"
model="${DEMO_MODEL:-$root/models/stagebeam-shapes}"
examples="$root/examples"
port="${DEMO_PORT:-$((20000 + RANDOM % 20000))}"
keep="${DEMO_DIR:+yes}"
dir="${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/stagebeam-demo.XXXXXX")}"
mkdir -p "$dir"

STAGEBEAM="$bin" "$root/cluster/local.sh" --model "$model" --workers 2 --judges 1 --max-batch 4 --threads 1 \
  --port "$port" --dir "$dir" >"$dir/cluster.log" 2>&1 &
cluster=$!
finish() {
  local status=$?
  kill -TERM $cluster 2>/dev/null || true
  wait $cluster 2>/dev/null || true
  if [[ $status -ne 0 || -n "$keep" ]]; then
    echo "== the cluster's logs and journal are in $dir"
  else
    rm -rf "$dir"
  fi
}
trap finish EXIT

# Wait until the three workers have joined.
for _ in $(seq 300); do
  workers=$("$bin" status --coordinator "tcp://127.0.0.1:$port" --json --timeout-s 2 2>/dev/null |
    grep -o '"workerId"' | wc -l || true)
  [[ "$workers" -ge 3 ]] && break
  kill -0 $cluster 2>/dev/null || { cat "$dir/cluster.log"; exit 1; }
  sleep 0.2
done

echo "== cluster on tcp://127.0.0.1:$port: coordinator, 2 generate workers, 1 judge · model $model"
echo "== logs and journal: $dir (removed at the end unless the demo fails)"
right=0
asked=0
while IFS= read -r line; do
  image=$(sed -E 's/.*"image": "([^"]+)".*/\1/' <<<"$line")
  question=$(sed -E 's/.*"question": "([^"]+)".*/\1/' <<<"$line")
  expected=$(sed -E 's/.*"answer": "([^"]+)".*/\1/' <<<"$line")
  echo
  echo "== $image: $question"
  "$bin" submit --coordinator "tcp://127.0.0.1:$port" --image "$examples/$image" --question "$question" \
    --beam 4 --search-stages summary,caption,reasoning,conclusion --tournament bracket --judge-mode generate --judge-temperature 0 --seed 1 --expected-answer "$expected" |
    tee "$dir/answer.txt"
  asked=$((asked + 1))
  # submit grades the answer as stagebeam eval does: "expected: … · right" or "· wrong".
  if grep -q '· right$' "$dir/answer.txt"; then right=$((right + 1)); fi
done <"$examples/questions.jsonl"
echo
echo "== $right of $asked answers right"
echo
echo "== status"
"$bin" status --coordinator "tcp://127.0.0.1:$port"
