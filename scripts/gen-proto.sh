#!/usr/bin/env bash
# Regenerates Sources/Wire/Generated/*.pb.swift from proto/stagebeam.proto and records the
# schema's SHA-256 next to the generated code (WireTests fails when that record is stale).
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

mkdir -p "$out"
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" \
  --proto_path=proto \
  --swift_out="$out" \
  --swift_opt=Visibility=Public \
  "$proto"

# The record holds the bare lowercase hex digest of the schema file's bytes.
sha256sum "$proto" | cut -d' ' -f1 > "$out/stagebeam.proto.sha256"
echo "gen-proto: wrote $out/stagebeam.pb.swift and $out/stagebeam.proto.sha256" >&2
