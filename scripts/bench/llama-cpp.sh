#!/usr/bin/env bash
# stagebeam against llama.cpp on the same weights, side by side from one run: prefill (128 tokens) and
# decode (64 tokens) tok/s at THREADS threads for every format, plus stagebeam's batch-8 decode.
#
#   scripts/bench/llama-cpp.sh [SHAPE] [THREADS] [FORMATS]
#     SHAPE    deep (default: 30 layers, hidden 576, vocab 49152, tied) or wide (8 layers, hidden 1024)
#     THREADS  2 by default
#     FORMATS  comma-separated, default f32,f16,bf16,q8_0,q4_0,q4_K_M
#
# Builds llama.cpp once (≈10 min on 2 cores) from the llama-cpp-python source distribution, native
# (-DGGML_NATIVE=ON: it uses what this CPU has), into $LLAMA_CPP_DIR (default ~/.cache/stagebeam/llama.cpp).
# Makes the random bench model (scripts/make_bench_model.py) in f32/f16/bf16 Hugging Face form for
# stagebeam, writes it as an f32 GGUF (scripts/bench/hf_to_gguf.py) and quantizes that with
# llama-quantize for llama.cpp. stagebeam serves the quantized formats from the same GGUF files where
# its build reads GGUF (`--model file.gguf`); otherwise their column says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
shape=${1:-deep}
threads=${2:-2}
formats=${3:-f32,f16,bf16,q8_0,q4_0,q4_K_M}
python=${PYTHON:-.venv/bin/python}
llama=${LLAMA_CPP_DIR:-$HOME/.cache/stagebeam/llama.cpp}
version=0.3.36

# llama.cpp, built once.
src="$llama/llama_cpp_python-$version/vendor/llama.cpp"
if [ ! -x "$src/build/bin/llama-bench" ] || [ ! -x "$src/build/bin/llama-quantize" ]; then
  mkdir -p "$llama"
  [ -x "$llama/venv/bin/pip" ] || python3 -m venv "$llama/venv"
  "$llama/venv/bin/pip" install -q scikit-build-core cmake ninja
  [ -d "$src" ] || {
    "$llama/venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation "llama-cpp-python==$version" -d "$llama"
    tar xzf "$llama/llama_cpp_python-$version.tar.gz" -C "$llama"
  }
  (cd "$src" && PATH="$llama/venv/bin:$PATH" cmake -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF >/dev/null &&
    PATH="$llama/venv/bin:$PATH" cmake --build build --target llama-bench llama-quantize)
fi
bin="$src/build/bin"

# The model in every format.
case "$shape" in
  deep) name=llama-135m-deep ;;
  wide) name=llama-150m ;;
  *) echo "unknown shape '$shape' (deep or wide)" >&2; exit 2 ;;
esac
dir=bench-models
[ -f "$dir/$name-f32/model.safetensors" ] || "$python" scripts/make_bench_model.py "$dir/$name-f32" --shape "$shape" >&2
# The 16-bit copies are the f32 weights rounded (training the tokenizer again would take minutes).
for dtype in f16 bf16; do
  [ -f "$dir/$name-$dtype/model.safetensors" ] || {
    mkdir -p "$dir/$name-$dtype"
    cp "$dir/$name-f32"/*.json "$dir/$name-$dtype/"
    "$python" -c 'import sys, torch; from safetensors.torch import load_file, save_file
dtype = {"f16": torch.float16, "bf16": torch.bfloat16}[sys.argv[3]]
save_file({k: v.to(dtype) for k, v in load_file(sys.argv[1]).items()}, sys.argv[2], metadata={"format": "pt"})' \
      "$dir/$name-f32/model.safetensors" "$dir/$name-$dtype/model.safetensors" "$dtype"
  }
done
gguf="$dir/$name-gguf"
mkdir -p "$gguf"
[ -f "$gguf/f32.gguf" ] || "$python" scripts/bench/hf_to_gguf.py "$dir/$name-f32" "$gguf/f32.gguf" >&2
IFS=, read -r -a wanted <<<"$formats"
for format in "${wanted[@]}"; do
  [ "$format" = f32 ] || [ -f "$gguf/$format.gguf" ] ||
    "$bin/llama-quantize" "$gguf/f32.gguf" "$gguf/$format.gguf" "$(echo "$format" | tr a-z A-Z)" >/dev/null 2>&1
done

swift build -c release --product stagebeam >/dev/null
swift build -c release --product stagebeam >/dev/null
bandwidth=$(.build/release/stagebeam bench-kernels --threads "$threads" --bandwidth-only | sed -n 's/^memory read bandwidth: \([0-9.]*\) GB\/s.*/\1/p')
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) · $(grep -o -w -E 'avx2|fma|f16c|avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | xargs)"
echo "model: $name ($shape) · $threads threads · prompt 128 · generate 64 · memory read bandwidth $bandwidth GB/s (stagebeam bench-kernels)" \
  "· load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s  %22s  %22s  %12s  %14s  %22s\n' format "stagebeam pp / tg" "llama.cpp pp / tg" "decode ratio" "stagebeam b8/b1" \
  "stagebeam decode reads"
for format in "${wanted[@]}"; do
  case "$format" in
    f32 | f16 | bf16) model="$dir/$name-$format" ;;
    *) model="$gguf/$format.gguf" ;;
  esac
  ours=$(.build/release/stagebeam bench --model "$model" --threads "$threads" --prompt-tokens 128 --gen-tokens 64 \
    --batch 1,8 --repeats 3 --json 2>/dev/null || true)
  theirs=$("$bin/llama-bench" -m "$gguf/$format.gguf" -t "$threads" -p 128 -n 64 -r 3 -o json 2>/dev/null || true)
  OURS="$ours" THEIRS="$theirs" FORMAT="$format" BANDWIDTH="$bandwidth" python3 - <<'EOF'
import json, os
def load(text):
    try:
        return json.loads(text)
    except ValueError:
        return None
ours, theirs = load(os.environ["OURS"]), load(os.environ["THEIRS"])
if ours:
    rows = {r["batch"]: r for r in ours["rows"]}
    pp, tg = rows[1]["prefill_tokens_per_second"], rows[1]["decode_tokens_per_second_aggregate"]
    mine = f"{pp:9.1f} / {tg:9.1f}"
    scaling = f"{rows[8]['decode_tokens_per_second_aggregate'] / tg:13.2f}x"
    rate = tg * ours["weight_bytes"] / 1e9
    reads = f"{rate:6.1f} GB/s ({100 * rate / float(os.environ['BANDWIDTH']):3.0f}%)"
else:
    pp = tg = None
    mine, scaling, reads = f"{'not loadable':>21}", f"{'-':>14}", "-"
if theirs:
    by = {("pp" if t["n_prompt"] else "tg"): t["avg_ts"] for t in theirs}
    other = f"{by['pp']:9.1f} / {by['tg']:9.1f}"
    ratio = f"{tg / by['tg']:11.2f}x" if tg else f"{'-':>12}"
else:
    other, ratio = f"{'-':>21}", f"{'-':>12}"
print(f"{os.environ['FORMAT']:<7}  {mine:>22}  {other:>22}  {ratio:>12}  {scaling}  {reads:>22}")
EOF
done
