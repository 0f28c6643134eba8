#!/usr/bin/env bash
# Several "hosts" on one machine: network namespaces with their own addresses, linked by veth pairs
# to a bridge — the coordinator in one namespace, each worker in its own, the client in the root
# namespace. Traffic between them crosses real (virtual) interfaces and IP routing, not loopback.
#
#   sudo cluster/netns.sh --model Tests/Fixtures/models/llama-gqa [--workers 2] [--items 8]
#
#   namespace   address        runs
#   sb-coord    10.77.0.1/24   stagebeam coordinator --bind tcp://10.77.0.1:5555 (metrics :9100)
#   sb-w1…wN    10.77.0.11…    stagebeam worker --coordinator tcp://10.77.0.1:5555 (metrics :9101)
#   (root)      10.77.0.254    bridge sb-br0; stagebeam batch, status and a metrics scrape
#
# Needs root (ip netns) and iproute2. Everything is removed on exit. STAGEBEAM picks the executable.
set -euo pipefail
model="" workers=2 items=8 beam=3 tokens=12
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --beam) beam="$2"; shift 2 ;;
    --max-stage-tokens) tokens="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "--model DIR is required" >&2; exit 2; }
[[ "$(id -u)" == 0 ]] || { echo "needs root (ip netns)" >&2; exit 2; }
bin="$(realpath "${STAGEBEAM:-.build/release/stagebeam}")"
model="$(realpath "$model")"
dir="$(mktemp -d)"
namespaces=(sb-coord)
for ((k = 1; k <= workers; k++)); do namespaces+=("sb-w$k"); done
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del sb-br0 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

ip link add sb-br0 type bridge
ip addr add 10.77.0.254/24 dev sb-br0
ip link set sb-br0 up
address() { [[ "$1" == sb-coord ]] && echo 10.77.0.1 || echo "10.77.0.$((10 + ${1#sb-w}))"; }
for ns in "${namespaces[@]}"; do
  ip netns add "$ns"
  ip link add "v-$ns" type veth peer name eth0 netns "$ns"
  ip link set "v-$ns" master sb-br0 up
  ip -n "$ns" addr add "$(address "$ns")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  echo "host $ns: $(ip -n "$ns" -brief addr show eth0 | awk '{print $3}')"
done

coordinator="tcp://10.77.0.1:5555"
ip netns exec sb-coord "$bin" coordinator --bind "$coordinator" --journal "$dir/journal.jsonl" \
  --metrics-port 9100 --metrics-host 10.77.0.1 > "$dir/coordinator.log" 2>&1 &
pids+=($!)
sleep 0.5
for ((k = 1; k <= workers; k++)); do
  ip netns exec "sb-w$k" "$bin" worker --coordinator "$coordinator" --model "$model" --worker-id "host-w$k" --threads 1 \
    --metrics-port 9101 --metrics-host "$(address "sb-w$k")" > "$dir/worker-$k.log" 2>&1 &
  pids+=($!)
done
until [[ "$(grep -c 'worker registered' "$dir/coordinator.log" || true)" -ge "$workers" ]]; do sleep 0.2; done
grep 'worker registered' "$dir/coordinator.log" | sed 's/^/coordinator log: /'

for ((i = 0; i < items; i++)); do
  printf '{"id": "q%d", "question": "Across hosts, question %d: what is %d plus %d?"}\n' "$i" "$i" "$i" "$i"
done > "$dir/items.jsonl"
echo "client (root namespace) → $coordinator"
"$bin" batch --coordinator "$coordinator" --input "$dir/items.jsonl" --output "$dir/out.jsonl" --beam "$beam" \
  --max-stage-tokens "$tokens" --concurrency 2 2>&1 | grep -v '^progress'
echo "answers by id (first 3):"
head -3 "$dir/out.jsonl" | python3 -c 'import json,sys
for line in sys.stdin:
    d = json.loads(line); print("  ", d["id"], d["status"], repr(d["answer"][:40]))' 2>/dev/null || head -c 300 "$dir/out.jsonl"
echo "coordinator status:"
"$bin" status --coordinator "$coordinator" | sed 's/^/  /'
echo "metrics scraped across the bridge:"
curl -s http://10.77.0.1:9100/metrics | grep -E '^stagebeam_(jobs_finished_total|worker_up|tokens_generated_total)' | sed 's/^/  /'
for ((k = 1; k <= workers; k++)); do
  curl -s "http://$(address "sb-w$k"):9101/metrics" | grep -E '^stagebeam_worker_tokens_generated_total' | sed "s/^/  sb-w$k: /"
done
