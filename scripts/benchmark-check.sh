#!/usr/bin/env bash
# Runs the package-benchmark suites in Benchmarks/ and compares their p90s with the
# thresholds checked in under Benchmarks/Thresholds/ (one JSON file per benchmark,
# written by `--update`).
#
# Noise policy: these machines are shared (2 cores, other builds running), so a
# slower run is usually a neighbour, not a regression. Two things keep noise from
# failing CI:
#   1. generous tolerances in the benchmarks themselves (BenchmarkDefaults.swift):
#      wall clock and throughput may be 50% worse at p90; only malloc
#      counts, which are deterministic, are held tight (+2 per iteration);
#   2. this script only WARNS on a regression by default (exit 0). `--strict` makes a
#      regression fail (exit 2), for a quiet machine or a manual check.
# CI runs `scripts/benchmark-check.sh` (warn-only); a human confirms a warning with
# `scripts/benchmark-check.sh --strict --filter '<name>'` on a quiet machine.
#
# Usage: scripts/benchmark-check.sh [--strict] [--update] [--filter REGEX]
#   --update   re-measure and rewrite the thresholds (commit the result deliberately)
#   --filter   only the benchmarks whose whole name matches REGEX (e.g. 'ReadSection.memb.*')
# package-benchmark's exit codes for a check: 0 equal, 2 regressions, 4 only improvements;
# 1.38.1 through the plugin also exits 1 on a regression ("... is WORSE than the defined
# thresholds") and on an improvement ("... is BETTER ..."), which this script tells apart
# from a failed build or run by that text.
set -uo pipefail
cd "$(dirname "$0")/.."
thresholds="$PWD/Benchmarks/Thresholds"
strict=0
update=0
filter=()
while (($#)); do
    case $1 in
        --strict) strict=1 ;;
        --update) update=1 ;;
        --filter) filter=(--filter "$2"); shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "benchmark-check: unknown argument $1" >&2; exit 64 ;;
    esac
    shift
done

if ((update)); then
    mkdir -p "$thresholds"
    exec swift package --package-path Benchmarks --allow-writing-to-package-directory \
        benchmark thresholds update --path "$thresholds" "${filter[@]}" --no-progress
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift package --package-path Benchmarks benchmark thresholds check --path "$thresholds" "${filter[@]}" --no-progress \
    2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if ((status == 1)) && grep -q "WORSE than the defined thresholds" "$log"; then
    status=2
elif ((status == 1)) && grep -q "BETTER than the defined thresholds" "$log"; then
    status=4
fi
case $status in
    0) echo "benchmark-check: p90s within the checked-in thresholds" ;;
    4) echo "benchmark-check: only improvements (consider --update)"; status=0 ;;
    2)
        if ((strict)); then
            echo "benchmark-check: REGRESSION past the p90 thresholds (--strict)" >&2
        else
            echo "benchmark-check: WARNING: p90 past the thresholds; not failing (noisy shared machine)." >&2
            echo "benchmark-check: confirm on a quiet machine with --strict before acting on it." >&2
            status=0
        fi
        ;;
    *) echo "benchmark-check: benchmark run failed (status $status)" >&2 ;;
esac
exit $status
