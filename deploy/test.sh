#!/usr/bin/env bash
# deploy/test.sh: VitalProof's whole test suite, as CI runs it (.ci/run calls exactly this).
#
# It makes sure MariaDB is up (installing it if missing), vets the code, runs
# every fuzz target briefly on its seed corpus plus fresh inputs, runs all
# tests against real MariaDB and real (embedded and external) Trillian, and
# last runs deploy/quickstart.sh end to end on ports and databases of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOTOOLCHAIN=local
FUZZTIME=${FUZZTIME:-10s}

deploy/mariadb.sh

echo "== go vet"
go vet ./...

echo "== generated code is up to date"
api/generate.sh --check

echo "== fuzz targets (${FUZZTIME} each)"
# Every Fuzz* function in the module, found by name so a new one is never missed.
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sort | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //' | while read -r target; do
    echo "-- $pkg $target"
    out=$(mktemp)
    ok=0
    for attempt in 1 2; do
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" > "$out" 2>&1; then
        ok=1
        break
      fi
      # Go's fuzz coordinator sometimes ends a clean run with "context
      # deadline exceeded" when a worker is busy at the deadline; a real
      # finding always writes its failing input. Only that flake is retried.
      if grep -q "Failing input written" "$out" || ! grep -q "context deadline exceeded" "$out"; then
        break
      fi
      echo "   (the fuzz coordinator timed out without a finding; running again)"
    done
    if [ "$ok" -ne 1 ]; then
      cat "$out"
      rm -f "$out"
      exit 1
    fi
    tail -n 1 "$out"
    rm -f "$out"
  done
done

echo "== tests"
go test -count=1 -timeout 40m ./...

echo "== the quickstart, end to end (the README's first command)"
# On its own ports, databases and output directory, so that it never
# touches a quickstart a developer has running.
qs_out=$(mktemp -d)
trap 'rm -rf "$qs_out"' EXIT
OUT="$qs_out/quickstart-out" PORT_BASE=28080 DB_PREFIX=vitalproof_test_quickstart deploy/quickstart.sh > "$qs_out/quickstart.log" 2>&1 || {
  tail -n 60 "$qs_out/quickstart.log"
  echo "the quickstart failed; its daemon's log:"
  tail -n 40 "$qs_out/quickstart-out/vitalproofd.log" 2>/dev/null || true
  exit 1
}
sed -n '/^== summary/,$p' "$qs_out/quickstart.log"
