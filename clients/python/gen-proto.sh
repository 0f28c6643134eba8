#!/usr/bin/env bash
# Regenerates stagebeam_client/stagebeam_pb2.py from proto/stagebeam.proto (needs protoc:
# apt-get install protobuf-compiler). The generated file is committed, so installing needs no protoc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
protoc --proto_path="$here/../../proto" --python_out="$here/stagebeam_client" "$here/../../proto/stagebeam.proto"
