#!/usr/bin/env bash
# The deployment checks, with no cluster, registry or container runtime:
#   1. the image: deploy/image/build.sh (buildah, from scratch);
#   2. the chart: Helm 4 lint and render (helm-python-sdk), every object validated against
#      Kubernetes 1.31 (kubernetes-validate, strict) and the custom resources against their
#      CRDs (kubernetes-models);
#   3. the image's own binary, unpacked and run with chroot, serving with the rendered
#      Deployment's settings against a fake Coder.
# Python tools are pinned with hashes (requirements.txt) in a virtualenv under target/; npm
# tools by package-lock.json. Needs root (chroot), buildah and ca-certificates.
#   bash tests/deploy/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
work="$root/target/deploy"
venv="$work/venv"
mkdir -p "$work"

echo "== python tools (target/deploy/venv, hashes required)"
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$here/requirements.txt"
echo "== npm ci (tests/deploy)"
npm ci --prefix "$here" --no-audit --no-fund --loglevel=error

echo "== image"
bash deploy/image/build.sh

echo "== chart"
"$venv/bin/python" "$here/verify_chart.py" "$work/chart"
node "$here/validate-crds.mjs" "$work/chart/custom-resources.json"

echo "== image and chart together"
"$venv/bin/python" "$here/verify_image.py" target/image/coder-audit-gateway.oci.tar "$work/chart" "$work"
