#!/usr/bin/env bash
# The browser suite: GraphiQL in Debian's Chromium (puppeteer-core, pinned in
# package-lock.json; it never downloads a browser) against the real binary in demo mode.
# Screenshots land in target/browser/.
#   bash tests/browser/run.sh
# Needs /usr/bin/chromium (Debian's `chromium` package; .ci/run installs it) or CHROMIUM=path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
chromium=${CHROMIUM:-/usr/bin/chromium}
[[ -x $chromium ]] || { echo "no Chromium at $chromium: apt-get install chromium, or set CHROMIUM"; exit 1; }

echo "== npm ci (tests/browser)"
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
echo "== cargo build"
cargo build --quiet
echo "== GraphiQL in $("$chromium" --version 2>/dev/null || echo Chromium)"
CHROMIUM=$chromium node --test --test-reporter=spec --test-concurrency=1 "$here/graphiql.test.mjs"
echo "screenshots: $(ls target/browser/*.png | tr '\n' ' ')"
