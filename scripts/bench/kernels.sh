#!/usr/bin/env bash
# Memory read bandwidth of this machine and `linear`'s weight-read throughput per format, single row
# and batched (`stagebeam bench-kernels`). Prints the CPU's vector features beside the figures. Usage:
#   scripts/bench/kernels.sh [THREADS] [extra bench-kernels options, e.g. --formats f32,q4_0]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
shift || true
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) · $(grep -o -w -E 'avx2|fma|f16c|avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | xargs)"
swift build -c release --product stagebeam >/dev/null
.build/release/stagebeam bench-kernels --threads "$threads" "$@"
