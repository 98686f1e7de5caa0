#!/usr/bin/env bash
# Regenerates the committed TypeScript protobuf code from proto/ with protoc + ts-proto.
#   shim side   -> src/shim-api/proto/  (generic service definitions, used by our ttrpc dispatcher)
#   client side -> src/client/proto/    (@grpc/grpc-js clients for containerd's gRPC API and
#                                        Kubernetes CRI runtime.v1, our subset in proto/k8s/)
# Each protoc run replaces only the top-level directories it generates (containerd/, google/,
# cgroups/, runtimeoptions/, k8s/); hand-written files beside them (index.ts, *.test.ts) are left alone. Idempotent.
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
  local entry
  for entry in "$tmp"/*; do
    rm -rf "$out/$(basename "$entry")"
    cp -R "$entry" "$out/"
  done
  echo "gen-proto: $out <- $# proto files ($(cd "$tmp" && find . -name '*.ts' | wc -l) .ts files)"
}

gen src/shim-api/proto "$COMMON_OPTS,outputServices=generic-definitions" "${SHIM_PROTOS[@]}"
gen src/shim-api/proto "$BASE_OPTS,forceLong=bigint,outputServices=false" "${CGROUPS_PROTOS[@]}"
# Client side: grpc-js clients plus generic definitions (the promise wrapper in src/client/containerd.ts
# uses the definitions' requestType/responseType codecs).
gen src/client/proto "$COMMON_OPTS,outputServices=grpc-js,outputServices=generic-definitions" "${CLIENT_PROTOS[@]}"
gen src/client/proto "$BASE_OPTS,forceLong=bigint,outputServices=grpc-js,outputServices=generic-definitions" "${CRI_PROTOS[@]}"
