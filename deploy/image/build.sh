#!/usr/bin/env bash
# Builds the gateway's OCI image from scratch and writes it as an OCI archive to
# target/image/coder-audit-gateway.oci.tar. No base image is pulled and nothing is run in
# a container: the release binary, exactly the shared libraries it links, Debian's CA bundle
# and /etc/passwd are staged under target/image/context/rootfs, and buildah builds
# deploy/image/Containerfile over them (COPY and metadata only).
#
#   bash deploy/image/build.sh               # cargo build --release, stage, build the archive
#   bash deploy/image/build.sh --stage-only  # stage only (for docker/podman build)
#
# Needs buildah (Debian: apt-get install buildah) and ca-certificates. Environment:
# IMAGE_SOURCE (the org.opencontainers.image.source label; default: git's origin remote, else
# the project's repository), IMAGE_TAG (default: the crate version).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out="$root/target/image"
context="$out/context"
rootfs="$context/rootfs"
binary="$root/target/release/coder-audit-gateway"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo "https://github.com/coder-audit-gateway/coder-audit-gateway")}
tag=${IMAGE_TAG:-$version}

echo "== cargo build --release"
cargo build --release --quiet

echo "== staging $rootfs"
[[ -r $ca_bundle ]] || { echo "no $ca_bundle: apt-get install ca-certificates"; exit 1; }
rm -rf "$context"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs"
install -m 0755 "$binary" "$rootfs/usr/local/bin/coder-audit-gateway"
# Exactly the libraries the dynamic loader resolves for the binary, loader included, at the
# paths the binary asks for (regular files: the image has no /lib symlinks).
ldd "$binary" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }' | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
install -m 0644 "$ca_bundle" "$rootfs$ca_bundle"
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'nonroot:x:65532:\n' > "$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
find "$rootfs" -type f | sed "s#^$rootfs##" | sort
[[ ${1:-} == --stage-only ]] && exit 0

echo "== buildah build (from scratch)"
command -v buildah >/dev/null || { echo "no buildah: apt-get install buildah"; exit 1; }
# Image storage stays under target/, away from any system store; vfs needs no kernel support.
storage=(--root "$out/storage" --runroot "$out/run" --storage-driver vfs)
image="localhost/coder-audit-gateway:$tag"
buildah "${storage[@]}" build --quiet --format oci --isolation chroot \
  --timestamp 0 \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source" \
  -f "$root/deploy/image/Containerfile" -t "$image" "$context"
rm -f "$out/coder-audit-gateway.oci.tar"
buildah "${storage[@]}" push --quiet "$image" "oci-archive:$out/coder-audit-gateway.oci.tar:$image"
buildah "${storage[@]}" rmi --all --force >/dev/null
echo "wrote $out/coder-audit-gateway.oci.tar ($(du -h "$out/coder-audit-gateway.oci.tar" | cut -f1))"
