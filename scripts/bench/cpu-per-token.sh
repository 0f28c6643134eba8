#!/usr/bin/env bash
# stagebeam against llama.cpp in CPU time per token, one thread: a comparison that holds on a machine
# shared with other work, where wall-clock tok/s mostly measures the other work (a process's CPU
# time leaves out the time it waited for a core; memory stalls stay in).
#
#   scripts/bench/cpu-per-token.sh [FORMATS] [MODE] [STAGEBEAM...]
#     FORMATS    comma-separated GGUF names in bench-models/llama-135m-deep-gguf, default
#                f32,f16,bf16,q8_0,q4_0,q4_K_M (made by scripts/bench/llama-cpp.sh; bf16 by
#                `llama-quantize f32.gguf bf16.gguf BF16`)
#     MODE       decode (default), prefill, or decode8 (stagebeam only: 8 sequences decoded together,
#                CPU ms per token = per step / 8; llama-bench has no batched decode)
#     STAGEBEAM  executables to compare (default .build/release/stagebeam)
#
# Decode: (CPU(80 tokens) − CPU(16 tokens)) / 64 after a 16-token prompt (decode8: / (64 · 8)); prefill: (CPU(144-token
# prompt) − CPU(16-token prompt)) / 128, so loading and the fixed parts of a run cancel. Both
# programs run each part twice (stagebeam bench: a warm-up and one measurement; llama-bench:
# --no-warmup -r 2), and the difference is divided by two. llama.cpp from $LLAMA_CPP_DIR as built by
# scripts/bench/llama-cpp.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
IFS=, read -r -a formats <<<"${1:-f32,f16,bf16,q8_0,q4_0,q4_K_M}"
mode=${2:-decode}
shift $(($# > 2 ? 2 : $#))
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(.build/release/stagebeam)
llama=${LLAMA_CPP_DIR:-$HOME/.cache/stagebeam/llama.cpp}/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-bench
models=bench-models/llama-135m-deep-gguf

cpu() { /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
per_token() { echo "($2 - $1) * 1000 / 2 / $3" | bc -l | xargs printf '%.2f'; }

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) · $(grep -o -w -E 'avx2|fma|f16c|avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | xargs)"
echo "$mode, 1 thread, CPU ms per token · load average $(cut -d' ' -f1-3 /proc/loadavg)"
for format in "${formats[@]}"; do
  model=$models/$format.gguf
  [ -f "$model" ] || { echo "$format: no $model" >&2; continue; }
  line="$format"
  for binary in "${binaries[@]}"; do
    if [ "$mode" = prefill ]; then
      short=$(cpu "$binary" bench --model "$model" --threads 1 --prompt-tokens 16 --gen-tokens 1 --batch 1 --repeats 1)
      long=$(cpu "$binary" bench --model "$model" --threads 1 --prompt-tokens 144 --gen-tokens 1 --batch 1 --repeats 1)
      ours=$(per_token "$short" "$long" 128)
    else
      batch=$([ "$mode" = decode8 ] && echo 8 || echo 1)
      short=$(cpu "$binary" bench --model "$model" --threads 1 --prompt-tokens 16 --gen-tokens 16 --batch "$batch" --repeats 1)
      long=$(cpu "$binary" bench --model "$model" --threads 1 --prompt-tokens 16 --gen-tokens 80 --batch "$batch" --repeats 1)
      ours=$(per_token "$short" "$long" $((64 * batch)))
    fi
    line+="  $binary $ours"
  done
  if [ "$mode" = decode8 ]; then
    echo "$line · load $(cut -d' ' -f1 /proc/loadavg)"
    continue
  fi
  if [ "$mode" = prefill ]; then
    short=$(cpu "$llama" -m "$model" -t 1 -p 16 -n 0 -r 2 --no-warmup)
    long=$(cpu "$llama" -m "$model" -t 1 -p 144 -n 0 -r 2 --no-warmup)
    theirs=$(per_token "$short" "$long" 128)
  else
    short=$(cpu "$llama" -m "$model" -t 1 -p 0 -n 16 -r 2 --no-warmup)
    long=$(cpu "$llama" -m "$model" -t 1 -p 0 -n 80 -r 2 --no-warmup)
    theirs=$(per_token "$short" "$long" 64)
  fi
  echo "$line  llama.cpp $theirs  (stagebeam/llama.cpp speed: $(echo "$theirs / $ours" | bc -l | xargs printf '%.2f')×) · load $(cut -d' ' -f1 /proc/loadavg)"
done
