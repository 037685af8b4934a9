#!/usr/bin/env bash
# Validates, then runs the CI drills against ci/platform.kind.yaml with the endpoints from
# ${OUT_DIR}/kind.env, writing JUnit, JSON and HTML reports to ${OUT_DIR}/reports. Exits with
# firedrill's exit code (0 every drill passed, 1 a drill failed, see `firedrill --help`).
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[ -f "${OUT_DIR}/kind.env" ] || die "no ${OUT_DIR}/kind.env (run ci/scripts/expose.sh first)"
set -a
# shellcheck source=/dev/null
. "${OUT_DIR}/kind.env"
set +a
reports="${OUT_DIR}/reports"
mkdir -p "$reports"
export FIREDRILL_LEDGER="${OUT_DIR}/ledger.jsonl"

cd "$REPO_DIR"
"$FIREDRILL_BIN" validate --platform ci/platform.kind.yaml --tags "$CI_TAGS"
status=0
"$FIREDRILL_BIN" run --platform ci/platform.kind.yaml --tags "$CI_TAGS" --yes \
  --junit "${reports}/junit.xml" --json "${reports}/firedrill.json" --html "${reports}/firedrill.html" ||
  status=$?
log "firedrill run exited with ${status}"
exit "$status"
