#!/usr/bin/env bash
# Regenerates libs/contracts/src/gen from proto/ with buf and protoc-gen-es, and docs/api-reference.md with
# tools/api-reference.mjs.
# With --check it generates into a scratch folder instead and fails when that differs from the
# generated code or the API reference in the work tree, i.e. when someone changed a .proto and forgot to regenerate.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
cd "$root/proto"
if [[ "${1:-}" != "--check" ]]; then
  buf generate
  node "$root/tools/api-reference.mjs" "$root/docs/api-reference.md"
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Both checks run, so one CI run names everything that needs regenerating.
status=0
# buf prepends --output to the template's out path (../libs/contracts/src/gen).
buf generate --output "$scratch/proto"
if ! diff -r "$scratch/libs/contracts/src/gen" "$root/libs/contracts/src/gen" >"$scratch/diff.txt"; then
  echo "Generated contracts are out of date: run 'npm run proto:gen' and commit libs/contracts/src/gen." >&2
  head -n 40 "$scratch/diff.txt" >&2
  status=1
else
  echo "Generated contracts match proto/."
fi
node "$root/tools/api-reference.mjs" "$scratch/api-reference.md"
if ! diff -u "$root/docs/api-reference.md" "$scratch/api-reference.md" >"$scratch/api-reference.diff" 2>&1; then
  echo "API reference is out of date: run 'npm run proto:gen' and commit docs/api-reference.md" >&2
  head -n 40 "$scratch/api-reference.diff" >&2
  status=1
else
  echo "API reference matches proto/."
fi
exit "$status"
