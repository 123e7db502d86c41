#!/usr/bin/env bash
# What Lockdep's checks cost, measured the way issue 14's targets are stated, every run printed:
#   - lock pair: `rcu-stress lock-cost` of the Lockdep build (a checked mutex pair against a
#     plain pthread pair, alternated round by round inside one process): threaded ratio <= 1.25;
#   - registry: `rcu-stress registry --design rcu` (2 ISR-like readers, 1 writer), the plain
#     build and the Lockdep build run one after the other, round by round: lookups/s ratio >= 0.7.
# Each round prints its figures; the end prints every ratio again with the mean and median.
# The machine's drift shows in the C floor beside each lock pair (a minimal validator's cost:
# near 1.0 when the CPU hides simple work next to the atomics, higher when it does not).
#
# Usage: scripts/lockdep-cost.sh [ROUNDS] [REGISTRY_SECONDS]   (defaults: 10 rounds, 3 s)
# Builds first: `swift build -c release` (.build) and, with the checks compiled in,
# `swift build -c release --traits LockdepInRelease --scratch-path .build-lockdep`.
# Timing only: never run it beside a build or a test run, and never read one round alone.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
seconds=${2:-3}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "lockdep-cost: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2; }

swift build -c release --product rcu-stress >/dev/null
swift build -c release --traits LockdepInRelease --scratch-path .build-lockdep --product rcu-stress >/dev/null
plain=.build/release/rcu-stress
checked=.build-lockdep/release/rcu-stress

# One number from a one-line JSON object: field NAME.
field() { sed -E "s/.*\"$1\":(-?[0-9.]+).*/\1/" <<<"$2"; }
# mean and median of the arguments.
summary() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1; s += $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "mean %.3f median %.3f", s / NR, m }'; }

pairs=() lookups=()
echo "round  lock pair: checked/plain (checked ns, plain ns, C floor/plain)  registry: Lockdep/plain (plain, Lockdep lookups/s)"
for ((i = 1; i <= rounds; i++)); do
    cost=$("$checked" lock-cost --json | tail -n 1)
    off=$("$plain" registry --design rcu --duration "$seconds" --json | tail -n 1)
    on=$("$checked" registry --design rcu --duration "$seconds" --lockdep --json | tail -n 1)
    for run in "$off" "$on"; do
        [[ $run == *'"passed":true'* ]] || { echo "lockdep-cost: a registry run failed its checks: $run" >&2; exit 1; }
    done
    pair=$(field ratio "$cost")
    ratio=$(awk -v a="$(field lookups_per_s "$on")" -v b="$(field lookups_per_s "$off")" 'BEGIN { printf "%.3f", a / b }')
    pairs+=("$pair") lookups+=("$ratio")
    printf '%5d  %.3f (%s, %s, %s)  %s (%.3g, %.3g)\n' "$i" "$pair" "$(field checked_ns "$cost")" \
        "$(field plain_ns "$cost")" "$(field floor_ratio "$cost")" "$ratio" \
        "$(field lookups_per_s "$off")" "$(field lookups_per_s "$on")"
done
echo "lock pair (target <= 1.25): ${pairs[*]}; $(summary "${pairs[@]}")"
echo "registry  (target >= 0.70): ${lookups[*]}; $(summary "${lookups[@]}")"
