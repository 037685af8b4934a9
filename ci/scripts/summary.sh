#!/usr/bin/env bash
# Prints the verdicts of a firedrill JSON report (docs/REPORT.md) as Markdown: one row per
# scenario, then one per timed phase. Used for GitHub's job summary.
# Usage: ci/scripts/summary.sh REPORT.json
set -euo pipefail

report="${1:?usage: summary.sh REPORT.json}"
command -v jq >/dev/null 2>&1 || {
  echo "jq is not installed" >&2
  exit 1
}

jq -r '
  def secs: if . == null then "-" else (. * 10 | round / 10 | tostring) + " s" end;
  "**\(.verdict)** on platform `\(.platform)` (run \(.run))",
  "",
  "| feature | scenario | verdict |",
  "| --- | --- | --- |",
  (.scenarios[] | "| \(.feature) | \(.scenario) | \(if .passed then "passed" else "**failed**" end) |"),
  "",
  "| scenario | phase | measured | target | verdict |",
  "| --- | --- | --- | --- | --- |",
  (.scenarios[] as $s | $s.phases[]? | select(.verdict != null)
    | "| \($s.scenario) | \(.name) | \(.verdict.measured | secs) | \(.verdict.target) | \(if .verdict.passed then "met" else "**missed**" end) |")
' "$report"
