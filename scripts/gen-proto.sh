#!/usr/bin/env bash
# Regenerates Sources/Wire/Generated/*.pb.swift from proto/stagebeam.proto and records the
# schema's SHA-256 next to the generated code (WireTests fails when that record is stale).
# With --check it generates into a temporary folder and fails when the committed code differs
# (a hand edit, or a schema change without regeneration); CI runs it.
#
# Needs protoc (apt: protobuf-compiler). Builds protoc-gen-swift from the swift-protobuf version
# this package resolves, once, into .build-wire-plugin/ (about a minute); swift-protobuf's own build
# plugin is not used because it compiles protoc from C++ sources (~10 minutes on 2 cores).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

proto=proto/stagebeam.proto
out=Sources/Wire/Generated
plugin=.build-wire-plugin/release/protoc-gen-swift

command -v protoc >/dev/null || { echo "gen-proto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

if [[ ! -x "$plugin" ]]; then
  echo "gen-proto: building protoc-gen-swift (once)…" >&2
  swift build -c release --product protoc-gen-swift --scratch-path .build-wire-plugin >&2
fi

check=false
[[ "${1:-}" == "--check" ]] && check=true
committed=$out
if $check; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

mkdir -p "$out"
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" \
  --proto_path=proto \
  --swift_out="$out" \
  --swift_opt=Visibility=Public \
  "$proto"

# The record holds the bare lowercase hex digest of the schema file's bytes.
sha256sum "$proto" | cut -d' ' -f1 > "$out/stagebeam.proto.sha256"
if $check; then
  if ! diff -r -q "$out" "$committed" >&2; then
    echo "gen-proto: $committed differs from what $proto generates; run scripts/gen-proto.sh" >&2
    exit 1
  fi
  echo "gen-proto: $committed is what $proto generates" >&2
  exit 0
fi
echo "gen-proto: wrote $out/stagebeam.pb.swift and $out/stagebeam.proto.sha256" >&2
