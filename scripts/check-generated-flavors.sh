#!/usr/bin/env bash
# Fails when Sources/RCU/RCUFlavorTable.swift is not what scripts/generate-flavors.sh
# writes from its table (someone edited the generated file, or the table, alone).
set -euo pipefail
cd "$(dirname "$0")/.."
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
scripts/generate-flavors.sh "$fresh"
if ! diff -u Sources/RCU/RCUFlavorTable.swift "$fresh"; then
    echo "FAIL: Sources/RCU/RCUFlavorTable.swift is stale: run scripts/generate-flavors.sh and commit it" >&2
    exit 1
fi
echo "OK: Sources/RCU/RCUFlavorTable.swift is what scripts/generate-flavors.sh writes"
