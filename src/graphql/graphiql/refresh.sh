#!/usr/bin/env bash
# Refreshes vendor/ from the npm registry, exactly as package-lock.json pins it (integrity
# hashes checked by `npm ci`). The Rust build only embeds vendor/; it never touches the network.
#
#   bash src/graphql/graphiql/refresh.sh            # reinstall the pinned versions
#   bash src/graphql/graphiql/refresh.sh --update   # re-resolve package.json, rewrite the lockfile
#
# node_modules lives under target/, never beside the sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="$root/target/graphiql-npm"
rm -rf "$work"
mkdir -p "$work"
cp "$here/package.json" "$work/"
if [[ "${1:-}" == "--update" ]]; then
  (cd "$work" && npm install --ignore-scripts --no-audit --no-fund)
  cp "$work/package-lock.json" "$here/package-lock.json"
else
  cp "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund)
fi
modules="$work/node_modules"
vendor="$here/vendor"
rm -rf "$vendor"
mkdir -p "$vendor"
cp "$modules/react/umd/react.production.min.js" "$vendor/react.production.min.js"
cp "$modules/react-dom/umd/react-dom.production.min.js" "$vendor/react-dom.production.min.js"
cp "$modules/graphiql/graphiql.min.js" "$vendor/graphiql.min.js"
cp "$modules/graphiql/graphiql.min.css" "$vendor/graphiql.min.css"
cp "$modules/@graphiql/plugin-explorer/dist/index.umd.js" "$vendor/plugin-explorer.umd.js"
cp "$modules/@graphiql/plugin-explorer/dist/style.css" "$vendor/plugin-explorer.css"
# Source-map comments point at files we do not ship; the browser would ask for them.
sed -i -E '/^\/\/# sourceMappingURL=.*$/d; s#/\*\# sourceMappingURL=[^*]*\*/##' "$vendor"/*.js "$vendor"/*.css
# The bundles carry their dependencies; every package of the production tree is listed with
# its licence text.
node "$here/licenses.mjs" "$work" > "$vendor/LICENSES.txt"
echo "vendor/ refreshed:"
ls -l "$vendor"
