#!/usr/bin/env bash
# Prints the path of a llama.cpp `llama-server` binary, building it once when $LLAMA_SERVER does not
# name one: from the llama-cpp-python source distribution (its vendor/llama.cpp), native
# (-DGGML_NATIVE=ON), the llama-server target only, into $LLAMA_CPP_DIR (default
# ~/.cache/stagebeam/llama.cpp)/…/build-server (≈ 20 min on 2 cores). Used by
# scripts/e2e-server-backend.sh and scripts/bench/server-backend.sh.
set -euo pipefail
if [ -n "${LLAMA_SERVER:-}" ]; then
  [ -x "$LLAMA_SERVER" ] || { echo "llama-server.sh: LLAMA_SERVER=$LLAMA_SERVER is not executable" >&2; exit 1; }
  echo "$LLAMA_SERVER"
  exit 0
fi
llama=${LLAMA_CPP_DIR:-$HOME/.cache/stagebeam/llama.cpp}
version=0.3.36
src="$llama/llama_cpp_python-$version/vendor/llama.cpp"
bin="$src/build-server/bin/llama-server"
if [ ! -x "$bin" ]; then
  mkdir -p "$llama"
  [ -x "$llama/venv/bin/pip" ] || python3 -m venv "$llama/venv"
  "$llama/venv/bin/pip" install -q scikit-build-core cmake ninja >&2
  [ -d "$src" ] || {
    "$llama/venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation "llama-cpp-python==$version" -d "$llama" >&2
    tar xzf "$llama/llama_cpp_python-$version.tar.gz" -C "$llama"
  }
  (cd "$src" && PATH="$llama/venv/bin:$PATH" cmake -B build-server -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2 &&
    PATH="$llama/venv/bin:$PATH" cmake --build build-server --target llama-server -j2 >&2)
fi
echo "$bin"
