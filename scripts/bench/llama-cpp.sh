#!/usr/bin/env bash
# stagebeam against llama.cpp on the same weights, side by side from one run: prefill (128 tokens) and
# decode (64 tokens after those 128) tok/s at THREADS threads for every format, plus stagebeam's
# batch-8 decode, the share of the measured memory bandwidth its one-sequence decode reads, and its
# peak resident memory beside the file's size.
#
#   scripts/bench/llama-cpp.sh [SHAPE] [THREADS] [FORMATS] [ROUNDS]
#     SHAPE    deep (default: 30 layers, hidden 576, vocab 49152, tied) or wide (8 layers, hidden 1024)
#     THREADS  2 by default
#     FORMATS  comma-separated, default f32,f16,bf16,q8_0,q4_0,q4_K_M
#     ROUNDS   1 by default: how many times each pair (stagebeam, then llama.cpp) runs back to back;
#              with more, each column is the median over rounds and each ratio the median of the
#              rounds' ratios (on a shared machine the load moves between rounds, less within a pair)
#   KV_TYPE=f32|f16 (environment; f16 by default): stagebeam's KV cache (`--kv-type`). llama.cpp
#              keeps its cache in f16 unless told otherwise, so f16 compares like with like; f32 is
#              stagebeam's default (logits as an f32 reference computes them).
#   KERNELS=native|avx2 (environment; native by default): avx2 runs both programs on AVX2 alone, as
#              on a machine without AVX-512: stagebeam with STAGEBEAM_KERNELS=avx2, llama.cpp built
#              without AVX-512 (-DGGML_NATIVE=OFF and the AVX2-era flags) into a build-avx2 directory.
#
# Builds llama.cpp once (≈10 min on 2 cores) from the llama-cpp-python source distribution, native
# (-DGGML_NATIVE=ON: it uses what this CPU has), into $LLAMA_CPP_DIR (default ~/.cache/stagebeam/llama.cpp).
# Makes the random bench model (scripts/make_bench_model.py), writes it as an f32 GGUF
# (scripts/bench/hf_to_gguf.py) and converts that to the other formats with
# llama-quantize. stagebeam and llama.cpp serve each format from the same GGUF file.
set -euo pipefail
cd "$(dirname "$0")/../.."
shape=${1:-deep}
threads=${2:-2}
formats=${3:-f32,f16,bf16,q8_0,q4_0,q4_K_M}
rounds=${4:-1}
kv_type=${KV_TYPE:-f16}
kernels=${KERNELS:-native}
python=${PYTHON:-.venv/bin/python}
llama=${LLAMA_CPP_DIR:-$HOME/.cache/stagebeam/llama.cpp}
version=0.3.36

# llama.cpp, built once (per kernel choice).
src="$llama/llama_cpp_python-$version/vendor/llama.cpp"
case "$kernels" in
  native) build=build flags=(-DGGML_NATIVE=ON) ;;
  avx2)
    build=build-avx2
    flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF
      -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF)
    export STAGEBEAM_KERNELS=avx2 ;;
  *) echo "unknown KERNELS '$kernels' (native or avx2)" >&2; exit 2 ;;
esac
if [ ! -x "$src/$build/bin/llama-bench" ] || [ ! -x "$src/$build/bin/llama-quantize" ]; then
  mkdir -p "$llama"
  [ -x "$llama/venv/bin/pip" ] || python3 -m venv "$llama/venv"
  "$llama/venv/bin/pip" install -q scikit-build-core cmake ninja
  [ -d "$src" ] || {
    "$llama/venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation "llama-cpp-python==$version" -d "$llama"
    tar xzf "$llama/llama_cpp_python-$version.tar.gz" -C "$llama"
  }
  (cd "$src" && PATH="$llama/venv/bin:$PATH" cmake -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${flags[@]}" -DLLAMA_CURL=OFF >/dev/null &&
    PATH="$llama/venv/bin:$PATH" cmake --build "$build" --target llama-bench llama-quantize)
fi
bin="$src/$build/bin"

# The model in every format.
case "$shape" in
  deep) name=llama-135m-deep ;;
  wide) name=llama-150m ;;
  *) echo "unknown shape '$shape' (deep or wide)" >&2; exit 2 ;;
esac
dir=bench-models
[ -f "$dir/$name-f32/model.safetensors" ] || "$python" scripts/make_bench_model.py "$dir/$name-f32" --shape "$shape" >&2
gguf="$dir/$name-gguf"
mkdir -p "$gguf"
[ -f "$gguf/f32.gguf" ] || "$python" scripts/bench/hf_to_gguf.py "$dir/$name-f32" "$gguf/f32.gguf" >&2
IFS=, read -r -a wanted <<<"$formats"
for format in "${wanted[@]}"; do
  [ "$format" = f32 ] || [ -f "$gguf/$format.gguf" ] ||
    "$bin/llama-quantize" "$gguf/f32.gguf" "$gguf/$format.gguf" "$(echo "$format" | tr a-z A-Z)" >/dev/null 2>&1
done

swift build -c release --product stagebeam >/dev/null
probe=$(.build/release/stagebeam bench-kernels --threads "$threads" --bandwidth-only)
bandwidth=$(sed -n 's/^memory read bandwidth: \([0-9.]*\) GB\/s.*/\1/p' <<<"$probe")
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) · $(grep -o -w -E 'avx2|fma|f16c|avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | xargs)"
echo "model: $name ($shape) · $threads threads · prompt 128 · generate 64 · $rounds round(s) · stagebeam KV cache $kv_type" \
  "· kernels $kernels (stagebeam's: $(sed -n 's/.*kernels: \([a-z0-9]*\).*/\1/p' <<<"$probe"))" \
  "· memory read bandwidth $bandwidth GB/s (stagebeam bench-kernels)" \
  "· load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s  %22s  %22s  %16s  %14s  %22s  %18s\n' format "stagebeam pp / tg" "llama.cpp pp / tg" "ratio pp / tg" "stagebeam b8/b1" \
  "stagebeam decode reads" "peak RSS / file MB"
for format in "${wanted[@]}"; do
  [ -f "$gguf/$format.gguf" ] || { echo "$format: llama-quantize made no $gguf/$format.gguf" >&2; continue; }
  ours="" theirs=""
  for _ in $(seq "$rounds"); do
    ours+="$(.build/release/stagebeam bench --model "$gguf/$format.gguf" --threads "$threads" --prompt-tokens 128 --gen-tokens 64 \
      --batch 1,8 --repeats 3 --kv-type "$kv_type" --json 2>/dev/null | tr -d '\n' || true)"$'\n'
    # llama-bench's decode test starts from an empty cache unless given a depth; stagebeam's decodes
    # after its 128-token prompt, so llama.cpp's decode runs at depth 128 too (positions 128–191 both).
    theirs+="$({ "$bin/llama-bench" -m "$gguf/$format.gguf" -t "$threads" -p 128 -n 0 -r 3 -o jsonl
      "$bin/llama-bench" -m "$gguf/$format.gguf" -t "$threads" -p 0 -n 64 -d 128 -r 3 -o jsonl; } 2>/dev/null |
      python3 -c 'import json, sys; print(json.dumps([json.loads(line) for line in sys.stdin if line.strip()]))' || true)"$'\n'
  done
  OURS="$ours" THEIRS="$theirs" FORMAT="$format" BANDWIDTH="$bandwidth" FILE_BYTES="$(stat -c %s "$gguf/$format.gguf")" python3 - <<'EOF'
import json, os, statistics
def runs(text):
    """One JSON document per line (a round); a round that printed nothing is left out."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(None)
    return out
ours, theirs = runs(os.environ["OURS"]), runs(os.environ["THEIRS"])
pairs = [(o, t) for o, t in zip(ours, theirs) if o and t]
median = statistics.median
mine = scaling = reads = other = ratio = memory = None
if any(ours):
    rows = [{r["batch"]: r for r in run["rows"]} for run in ours if run]
    pp = [r[1]["prefill_tokens_per_second"] for r in rows]
    tg = [r[1]["decode_tokens_per_second_aggregate"] for r in rows]
    mine = f"{median(pp):9.1f} / {median(tg):9.1f}"
    scaling = f"{median(r[8]['decode_tokens_per_second_aggregate'] / r[1]['decode_tokens_per_second_aggregate'] for r in rows):13.2f}x"
    rate = median(tg) * next(run for run in ours if run)["weight_bytes"] / 1e9
    reads = f"{rate:6.1f} GB/s ({100 * rate / float(os.environ['BANDWIDTH']):3.0f}%)"
    # Peak resident memory of the run (batches 1 and 8, 8 × 192 positions of KV cache touched) beside the file.
    peak = max(run["peak_resident_bytes"] for run in ours if run)
    memory = f"{peak / 1e6:7.0f} / {int(os.environ['FILE_BYTES']) / 1e6:5.0f}"
def llama(run):
    return {("pp" if t["n_prompt"] else "tg"): t["avg_ts"] for t in run}
if any(theirs):
    by = [llama(run) for run in theirs if run]
    other = f"{median(b['pp'] for b in by):9.1f} / {median(b['tg'] for b in by):9.1f}"
if pairs:
    # The ratio of each round's pair (run back to back), then the median over rounds.
    ppr = median(o_rows[1]["prefill_tokens_per_second"] / llama(t)["pp"]
                 for o_rows, t in (({r["batch"]: r for r in o["rows"]}, t) for o, t in pairs))
    tgr = median(o_rows[1]["decode_tokens_per_second_aggregate"] / llama(t)["tg"]
                 for o_rows, t in (({r["batch"]: r for r in o["rows"]}, t) for o, t in pairs))
    ratio = f"{ppr:5.2f}x / {tgr:5.2f}x"
print(f"{os.environ['FORMAT']:<7}  {mine or 'not loadable':>22}  {other or '-':>22}  {ratio or '-':>16}  {scaling or '-':>14}  {reads or '-':>22}  {memory or '-':>18}")
EOF
done
