#!/usr/bin/env bash
# Chart checks, offline: helm lint --strict, render with every values file, validate the manifests against the
# Kubernetes JSON schemas (kubernetes-validate bundles them), and the template tests in tests/.
set -euo pipefail
chart=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$chart/../.." && pwd)
source "$root/deploy/local/common.sh"
bash "$root/deploy/local/install.sh" helm validate
# A helm built with 'go install' assumes an old Kubernetes unless told; always say which one.
KUBE_VERSION=${KUBE_VERSION:-1.30.0}
export HELM="$HELM_BIN" KUBE_VERSION

"$HELM" lint --strict "$chart" --kube-version "$KUBE_VERSION"
for values in "" "$root"/deploy/values/*.yaml; do
  args=(); [[ -n "$values" ]] && args=(-f "$values")
  echo "rendering and validating with ${values:-the chart defaults}"
  out=$(mktemp)
  "$HELM" template chatcrm "$chart" --kube-version "$KUBE_VERSION" "${args[@]}" >"$out"
  "$VALIDATE_VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "$out"
  rm -f "$out"
done
"$VALIDATE_VENV/bin/python" "$chart/tests/test_templates.py"
