#!/bin/sh
# Builds the tsshim installer image (the one deploy/tsshim-deploy.yaml runs) as an OCI image
# layout tarball, offline: no registry, no docker/buildah. Load it on a node with
#   ctr -n k8s.io images import tsshim-installer.oci.tar
# or push it with any OCI tool (skopeo copy oci-archive:tsshim-installer.oci.tar docker://...).
#
#   deploy/build-image.sh [--out FILE] [--name IMAGE] [--no-compress]
#
# Needs: a built checkout (npm ci && npm run build), node >= 20, GNU tar, gzip, sha256sum, ldd and
# a static busybox (Debian: busybox-static). The image holds one layer:
#   /bin/busybox + its applets     sh, sleep, chroot, nsenter, env, ... for the DaemonSet's commands
#   /usr/local/bin/node            this host's Node binary, with the shared libraries ldd lists for it
#   /opt/tsshim                    the package tree `tsshim install` copies (same code: package-tree.js)
#   /usr/local/bin/tsshim          -> /opt/tsshim/bin/tsshim
# The installer copies /usr/local/bin/node to the host with tsshim and checks it runs there (it needs
# the host's glibc and libstdc++; see docs/adr/0022-cluster-installer.md).
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$REPO/package.json').version")
out=$REPO/deploy/tsshim-installer.oci.tar
name=docker.io/tsshim/installer:$version
compress=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --no-compress) compress=0; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

say() { echo "[build-image] $*"; }
die() { echo "[build-image] $*" >&2; exit 1; }

[ -f "$REPO/dist/src/cli/install/package-tree.js" ] || die "no build in $REPO: run npm ci && npm run build"
node=$(command -v node) || die "node is not on PATH"
node=$(readlink -f "$node")
busybox=
for b in /bin/busybox /usr/bin/busybox /usr/local/bin/busybox; do
  if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi # ldd fails on a static binary
done
[ -n "$busybox" ] || die "no statically linked busybox (Debian: apt-get install busybox-static)"
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) die "no OCI architecture name for $(uname -m)" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/tsshim-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/usr/bin" "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/host" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/opt"
chmod 1777 "$rootfs/tmp"

# busybox and one link per applet
cp "$busybox" "$rootfs/bin/busybox"
for a in $("$busybox" --list); do
  [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
done
ln -s /bin/env "$rootfs/usr/bin/env" # `#!/usr/bin/env node`
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"

# node and the shared objects it loads, at the paths ldd names (the ELF interpreter included)
cp "$node" "$rootfs/usr/local/bin/node"
for lib in $(ldd "$node" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

# the package tree, by the installer's own copier
node "$REPO/dist/src/cli/install/package-tree.js" --out "$rootfs/opt/tsshim" | sed 's/^/[build-image] /'
ln -s /opt/tsshim/bin/tsshim "$rootfs/usr/local/bin/tsshim"

# one layer: a reproducible tar (sorted, mtime 0, root-owned), gzip'd unless --no-compress
oci=$work/oci
mkdir -p "$oci/blobs/sha256"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
if [ "$compress" = 1 ]; then
  gzip -n -6 "$work/layer.tar"
  layer=$work/layer.tar.gz
  layer_type=application/vnd.oci.image.layer.v1.tar+gzip
else
  layer=$work/layer.tar
  layer_type=application/vnd.oci.image.layer.v1.tar
fi
blob() { # file -> "sha256 size", moved into the blob store
  d=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(wc -c <"$1" | tr -d ' ')
  mv "$1" "$oci/blobs/sha256/$d"
  echo "$d $s"
}
set -- $(blob "$layer")
layer_digest=$1 layer_size=$2

cat >"$work/config.json" <<EOF
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/usr/local/bin/tsshim"],"Cmd":["--help"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"tsshim installer","org.opencontainers.image.version":"$version"}},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},"history":[{"created_by":"deploy/build-image.sh: busybox, node, /opt/tsshim"}]}
EOF
set -- $(blob "$work/config.json")
config_digest=$1 config_size=$2

cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"$layer_type","digest":"sha256:$layer_digest","size":$layer_size}]}
EOF
set -- $(blob "$work/manifest.json")
manifest_digest=$1 manifest_size=$2

tag=${name##*:}
cat >"$oci/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$manifest_size,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"$tag"}}]}
EOF
printf '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
say "$out: $name, manifest sha256:$manifest_digest, $(($(wc -c <"$out") / 1048576)) MiB"
