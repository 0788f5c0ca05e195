#!/usr/bin/env bash
# Protocol conformance with the ecosystem's own tools (pinned in package-lock.json):
#   1. buf lint on proto/ (STANDARD rules, proto/buf.yaml);
#   2. buf breaking against the proto of the previous commit, unless the package version changed;
#   3. graphql-inspector diff of schema.graphql against the previous commit: breaking changes fail;
#   4. graphql-http's GraphQL-over-HTTP audit suite against the real binary on its demo upstream;
#   5. Apollo Client's relayStylePagination paging the auditLogs connection to its end.
# Run from anywhere: bash tests/conformance/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

echo "== npm ci (tests/conformance)"
npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
bin="$here/node_modules/.bin"

echo "== buf lint"
"$bin/buf" lint proto

previous=$(git rev-parse --verify --quiet HEAD~1 || true)
echo "== buf breaking (against ${previous:-nothing})"
if [[ -z $previous ]] || ! git cat-file -e "$previous:proto/coder/audit/v1/audit.proto" 2>/dev/null; then
  echo "no previous proto to compare with"
elif [[ $(git show "$previous:proto/coder/audit/v1/audit.proto" | grep '^package ') != $(grep '^package ' proto/coder/audit/v1/audit.proto) ]]; then
  echo "package version changed: breaking changes are allowed"
else
  "$bin/buf" breaking proto --against ".git#ref=$previous,subdir=proto"
fi

echo "== graphql-inspector diff (against ${previous:-nothing})"
if [[ -z $previous ]] || ! git cat-file -e "$previous:schema.graphql" 2>/dev/null; then
  echo "no previous schema to compare with"
else
  old=$(mktemp --suffix=.graphql)
  trap 'rm -f "$old"' EXIT
  git show "$previous:schema.graphql" > "$old"
  "$bin/graphql-inspector" diff "$old" schema.graphql
fi

echo "== graphql-http audit"
cargo build --quiet
log=$(mktemp)
target/debug/coder-audit-gateway --listen 127.0.0.1:0 2> "$log" &
gateway=$!
trap 'kill "$gateway" 2>/dev/null || true; rm -f "$log" ${old:+"$old"}' EXIT
addr=""
for _ in $(seq 1 300); do
  addr=$(sed -n 's/.*serving GraphQL on http:\/\/\([^/]*\)\/graphql.*/\1/p' "$log" | head -n 1)
  [[ -n $addr ]] && break
  kill -0 "$gateway" 2>/dev/null || { cat "$log"; echo "the gateway exited"; exit 1; }
  sleep 0.1
done
[[ -n $addr ]] || { cat "$log"; echo "the gateway did not report its address"; exit 1; }
node "$here/graphql-http-audit.mjs" "http://$addr/graphql"

echo "== Apollo Client relayStylePagination over the auditLogs connection"
# The demo's owner token (src/demo/mod.rs, DEMO_TOKEN).
node "$here/apollo-relay.mjs" "http://$addr/graphql" demoowner0-DemoOwnerSecret0000001 "http://$addr/audit-logs/export"
