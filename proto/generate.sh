#!/usr/bin/env bash
# Regenerates libs/contracts/src/gen from proto/ with buf and protoc-gen-es.
# With --check it generates into a scratch folder instead and fails when that differs from the
# generated code in the work tree, i.e. when someone changed a .proto and forgot to regenerate.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
cd "$root/proto"
if [[ "${1:-}" != "--check" ]]; then
  buf generate
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# buf prepends --output to the template's out path (../libs/contracts/src/gen).
buf generate --output "$scratch/proto"
if ! diff -r "$scratch/libs/contracts/src/gen" "$root/libs/contracts/src/gen" >"$scratch/diff.txt"; then
  echo "Generated contracts are out of date: run 'npm run proto:gen' and commit libs/contracts/src/gen." >&2
  head -n 40 "$scratch/diff.txt" >&2
  exit 1
fi
echo "Generated contracts match proto/."
