#!/usr/bin/env bash
# Runs the named test tiers with node-tap and ends with one line per tier and a
# total, "N passed, N failed", counting every assertion and subtest leaf.
set -uo pipefail
cd "$(dirname "$0")/.."

declare -A ARGS=(
  [unit]="--jobs=2 supervisor/test/unit kiosk-overlay/agent/test/unit"
  # Integration tests share one libvirtd and one system bus: one file at a time.
  # The station agent's come first: the supervisor's end with the leak check.
  [integration]="--jobs=1 --timeout=1800 kiosk-overlay/agent/test/integration supervisor/test/integration"
)

total_pass=0 total_fail=0 status=0
report_dir="${TABULA_BUILD:-build}/test-reports"
mkdir -p "$report_dir"
for tier in "$@"; do
  [[ -n "${ARGS[$tier]:-}" ]] || { echo "run-tests: unknown tier $tier" >&2; exit 2; }
  out="$report_dir/$tier.tap"
  # The integration tier takes the machine's integration lock (as the image
  # tests that run a supervisor do): one supervisor on the bus at a time.
  lock=()
  [[ $tier == integration ]] && lock=(flock /tmp/tabula-it.lock)
  # shellcheck disable=SC2086
  "${lock[@]}" npx tap --disable-coverage --reporter=tap ${ARGS[$tier]} | tee "$out"
  rc=${PIPESTATUS[0]}
  # Files and subtests end with "# time=…"; assertions (the leaves) do not.
  pass=$(grep -E '^\s*ok [0-9]+' "$out" | grep -vc '# time=' || true)
  fail=$(grep -E '^\s*not ok [0-9]+' "$out" | grep -vc '# time=' || true)
  (( rc != 0 && fail == 0 )) && fail=1
  echo "$tier: $pass passed, $fail failed"
  total_pass=$(( total_pass + pass )); total_fail=$(( total_fail + fail ))
  (( rc != 0 )) && status=1
done
echo "tests: $total_pass passed, $total_fail failed"
exit $status
