#!/usr/bin/env bash
# The whole CI path in one command: clusters, image, deploy, wait, expose, drills, reports,
# and the clusters deleted again however it ends (KEEP_CLUSTERS=1 keeps them for debugging).
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=ci/scripts/lib.sh
. "${here}/lib.sh"

cleanup() {
  "${here}/collect-reports.sh" || true
  if [ "${KEEP_CLUSTERS:-0}" != 1 ]; then
    "${here}/delete-clusters.sh" || true
  fi
}
trap cleanup EXIT

"${here}/create-clusters.sh"
"${here}/build-image.sh"
"${here}/load-image.sh"
"${here}/deploy.sh"
"${here}/wait-ready.sh"
"${here}/expose.sh"
"${here}/run-drills.sh"
