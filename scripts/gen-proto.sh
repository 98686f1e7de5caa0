#!/usr/bin/env bash
# Regenerates every generated TypeScript protobuf file, once, into src/proto/ (protoc + ts-proto).
# src/proto/ holds generated files only (hand-written helpers live in src/shim-api/pb.ts); the
# tree is wiped and rewritten, so a removed .proto leaves nothing behind. Idempotent.
#   shim side:   generic service definitions (our ttrpc dispatcher and client use them)
#   client side: @grpc/grpc-js clients for containerd's gRPC API and Kubernetes CRI runtime.v1
# Message files both sides share (google/protobuf/*, containerd/types/*) are generated with the
# same message options by every run, so they are identical whichever run writes them last.
#   --check  regenerate into a scratch tree and fail on any difference from the committed one
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROTOC="${PROTOC:-protoc}"
PLUGIN="$ROOT/node_modules/.bin/protoc-gen-ts_proto"
# Well-known types (google/protobuf/*.proto); protoc normally finds them itself, this is a fallback.
WKT_INCLUDE="${WKT_INCLUDE:-/usr/include}"

command -v "$PROTOC" >/dev/null || { echo "gen-proto: protoc not found" >&2; exit 1; }
[ -x "$PLUGIN" ] || { echo "gen-proto: $PLUGIN missing (npm ci)" >&2; exit 1; }

BASE_OPTS="esModuleInterop=true,importSuffix=.js,useDate=false,useExactTypes=false"
COMMON_OPTS="$BASE_OPTS,forceLong=number"

SHIM_PROTOS=(
  containerd/task/v2/shim.proto
  containerd/types/mount.proto
  containerd/types/task.proto
  containerd/types/metrics.proto
  containerd/types/introspection.proto
  containerd/runtime/bootstrap/v1/bootstrap.proto
  containerd/events/task.proto
  containerd/services/ttrpc/events/v1/events.proto
  containerd/runc/options/oci.proto
  runtimeoptions/v1/api.proto
)

# cgroups counters and limits are uint64 and routinely exceed 2^53 (v1 "unlimited" memory limit is
# 2^63-4096, v2 "max" is 2^64-1): these two files get bigint 64-bit fields instead of number.
CGROUPS_PROTOS=(
  cgroups/v1/metrics.proto
  cgroups/v2/metrics.proto
)

CLIENT_PROTOS=(
  containerd/services/tasks/v1/tasks.proto
  containerd/services/containers/v1/containers.proto
  containerd/services/events/v1/events.proto
  containerd/services/version/v1/version.proto
  containerd/services/namespaces/v1/namespace.proto
  containerd/services/images/v1/images.proto
  containerd/services/snapshots/v1/snapshots.proto
)

# Kubernetes CRI (runtime.v1 subset). Its int64 timestamps are nanoseconds since the epoch (> 2^53)
# and its uint64 counters can be too, so 64-bit fields are bigint here as well.
CRI_PROTOS=(
  k8s/cri/runtime/v1/api.proto
)

# gen <out dir> <ts-proto options> <proto files...>
gen() {
  local out="$1" opts="$2"; shift 2
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  "$PROTOC" \
    --plugin=protoc-gen-ts_proto="$PLUGIN" \
    -I proto -I "$WKT_INCLUDE" \
    --ts_proto_out="$tmp" \
    --ts_proto_opt="$opts" \
    "$@"
  mkdir -p "$out"
  cp -R "$tmp"/. "$out/"
  echo "gen-proto: $out <- $# proto files ($(cd "$tmp" && find . -name '*.ts' | wc -l) .ts files)"
}

OUT=src/proto
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
if [ "$CHECK" = 1 ]; then
  OUT="$(mktemp -d)/proto"
  trap 'rm -rf "$(dirname "$OUT")"' EXIT
fi
rm -rf "$OUT"
gen "$OUT" "$COMMON_OPTS,outputServices=generic-definitions" "${SHIM_PROTOS[@]}"
gen "$OUT" "$BASE_OPTS,forceLong=bigint,outputServices=false" "${CGROUPS_PROTOS[@]}"
# Client side: grpc-js clients plus generic definitions (the promise wrapper in src/client/containerd.ts
# uses the definitions' requestType/responseType codecs).
gen "$OUT" "$COMMON_OPTS,outputServices=grpc-js,outputServices=generic-definitions" "${CLIENT_PROTOS[@]}"
gen "$OUT" "$BASE_OPTS,forceLong=bigint,outputServices=grpc-js,outputServices=generic-definitions" "${CRI_PROTOS[@]}"
if [ "$CHECK" = 1 ]; then
  if ! diff -r "$OUT" src/proto >/dev/null; then
    echo "check:proto: src/proto differs from what scripts/gen-proto.sh generates from proto/:" >&2
    diff -r "$OUT" src/proto | head -40 >&2
    echo "check:proto: run npm run gen:proto and commit the result" >&2
    exit 1
  fi
  echo "check:proto: src/proto is what proto/ generates"
fi
