#!/usr/bin/env bash
# End to end against llama.cpp's real `llama-server`: a coordinator and two workers started with
# `--backend openai` on one llama-server (one slot, so the server is deterministic for a seed), and
# text-only stage-search jobs:
#   1. the job on both workers;
#   2. the same job after one worker is gone (all on the other);
#   3. the same job while a worker is SIGKILLed mid-job (its requests re-dispatched);
#   4. a worker on stagebeam's own engine with the same GGUF is refused (another identity);
# the three answers must be identical. Then `stagebeam run` on stagebeam's own engine with the same
# GGUF, job and seed: agreement between the two backends is printed, not required.
# Not part of `make test`: it needs a llama-server binary (scripts/llama-server.sh builds one) and
# takes a few minutes on 2 cores.
#
#   scripts/e2e-server-backend.sh [MODEL.gguf]    (default: Tests/Fixtures/gguf/llama-f32.gguf)
#   env: LLAMA_SERVER (a llama-server binary), STAGEBEAM (a stagebeam binary), BEAM (4), TOKENS (16)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/Tests/Fixtures/gguf/llama-f32.gguf}"
beam=${BEAM:-4}
tokens=${TOKENS:-16}
server_bin="$("$root/scripts/llama-server.sh")"
source "$root/scripts/find-stagebeam.sh"
find_stagebeam e2e-server-backend.sh
dir="$(mktemp -d "${TMPDIR:-/tmp}/stagebeam-e2e-server-XXXXXX")"
http_port=$(( 20000 + RANDOM % 20000 ))
zmq_port=$(( http_port + 1 ))
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "llama-server: $server_bin · model: $model · logs: $dir"
"$server_bin" -m "$model" --host 127.0.0.1 --port "$http_port" -np 1 -t 2 -c 2048 --no-webui --cache-ram 0 >"$dir/llama-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$http_port/health" >/dev/null && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$http_port/health" >/dev/null || { echo "llama-server did not come up" >&2; tail -20 "$dir/llama-server.log" >&2; exit 1; }

endpoint="tcp://127.0.0.1:$zmq_port"
"$bin" coordinator --bind "$endpoint" --journal "$dir/journal.jsonl" --heartbeat-ms 200 --request-timeout-s 120 \
  >"$dir/coordinator.out" 2>"$dir/coordinator.log" &
pids+=($!)
sleep 1
start_worker() { # id backend...
  local id=$1; shift
  "$bin" worker --connect "$endpoint" --model "$model" --worker-id "$id" --roles generate,judge --heartbeat-ms 200 "$@" \
    >"$dir/worker-$id.out" 2>"$dir/worker-$id.log" &
  echo $!
}
served=(--backend openai --backend-url "http://127.0.0.1:$http_port/v1")
worker_a=$(start_worker a "${served[@]}"); pids+=("$worker_a")
worker_b=$(start_worker b "${served[@]}"); pids+=("$worker_b")
sleep 3

job=(--question "What is the capital of France?" --beam "$beam" --max-stage-tokens "$tokens" --tournament bracket --seed 11)
submit() { "$bin" submit --coordinator "$endpoint" --json "${job[@]}" --job-id "$1"; }
answer() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps([r["status"], r["answer"], r["counts"]["redispatched_requests"], r["determinism_caveats"]]))'; }

t0=$(date +%s.%N)
one=$(submit job-both | answer)
t1=$(date +%s.%N)
echo "1. both workers:      $one  ($(python3 -c "print(round($t1-$t0,1))") s)"
kill "$worker_b"; sleep 2
two=$(submit job-one | answer)
echo "2. worker a alone:    $two"
worker_b=$(start_worker b "${served[@]}"); pids+=("$worker_b")
sleep 3
submit job-killed >"$dir/killed.json" &
submitter=$!
sleep 2
kill -9 "$worker_a"
wait "$submitter"
three=$(answer <"$dir/killed.json")
echo "3. a killed mid-job:  $three"

"$bin" worker --connect "$endpoint" --model "$model" --worker-id c --heartbeat-ms 200 >"$dir/worker-c.out" 2>"$dir/worker-c.log" &
engine_worker=$!
status=0
wait "$engine_worker" || status=$?
echo "4. engine worker with the same GGUF exited with status $status (75: refused, another model identity)"

cpu=$("$bin" run --model "$model" --json "${job[@]}" 2>"$dir/run.log" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["answer"]))')
echo "stagebeam's own engine: answer $cpu"

python3 - "$one" "$two" "$three" "$cpu" "$status" <<'EOF'
import json, sys
one, two, three = (json.loads(a) for a in sys.argv[1:4])
cpu = json.loads(sys.argv[4])
refused = sys.argv[5] == "75"
same = one[0] == two[0] == three[0] == "succeeded" and one[1] == two[1] == three[1]
print("placement:", "identical answers" if same else "ANSWERS DIFFER", "· re-dispatched in 3:", three[2])
print("agreement with stagebeam's own engine:", "same answer" if cpu == one[1] else "different answer")
sys.exit(0 if same and three[2] > 0 and refused else 1)
EOF
