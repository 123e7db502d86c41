#!/usr/bin/env bash
# Instruction-count gate for the read side: fails when a read loop executes more
# instructions per read than scripts/read-instructions.expected allows, or when a
# Swift loop executes more than the C loop over liburcu that does the same work.
#
# Instruction counts do not drift with the machine's load, as timings do on shared
# machines. Each loop of `rcu-stress read-cost` runs alone (`--loop`) under valgrind's
# callgrind, on a `strip --strip-debug` copy of the release binary (valgrind 3.19
# cannot read the Swift 6.3 toolchain's DWARF); the count is the loop function's
# inclusive instructions over its reads (1,000,000 timed plus the 100,000 warm-up).
#
# Tolerance: a count may exceed its expected value by 2% or 0.25 instructions,
# whichever is larger (a compiler or liburcu update that moves a loop by one
# instruction fails; the fixed cost of a loop call, about 0.001 per read, does not).
# A count that falls below its expected value by more than that is reported, not
# fatal: rerun with --update and commit the new expectations.
#
# The same-work pairs (Swift loop <= C loop, 0.05 instructions of slack for fixed costs):
#   memb reader <= memb c          (liburcu's loop; the scope's thread check replaces
#                                   liburcu's sys_membarrier tests)
#   memb generic <= memb c-checked (+ the registration check of a generic read)
#   qsbr reader <= qsbr c-guarded  (+ online test and depth count, thread online)
#   qsbr generic <= qsbr c-guarded-offline (the same, thread offline: online/offline per read)
#   bp reader, generic <= bp c     (liburcu's bp checks registration itself)
#   mb reader, generic <= mb c-checked
#
# Usage: scripts/check-read-instructions.sh [--update] [path/to/rcu-stress]
#        (without a path: `swift build -c release` and use .build/release/rcu-stress)
set -euo pipefail
update=false
if [[ ${1:-} == --update ]]; then
    update=true
    shift
fi
if [[ $# -ge 1 ]]; then
    binary=$(realpath "$1")
fi
cd "$(dirname "$0")/.."
expected_file=scripts/read-instructions.expected

if [[ $# -lt 1 ]]; then
    swift build -c release --product rcu-stress >&2
    binary=.build/release/rcu-stress
fi
[[ -x $binary ]] || { echo "check-read-instructions: no executable at $binary" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "check-read-instructions: valgrind is not installed" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$binary" "$work/rcu-stress"
strip --strip-debug "$work/rcu-stress"

iterations=1000000
reads=$((iterations + iterations / 10))   # read-cost's warm-up runs a tenth first
loops=(
    "memb c" "memb c-checked" "memb reader" "memb generic"
    "qsbr c" "qsbr c-guarded" "qsbr c-guarded-offline" "qsbr c-online-offline" "qsbr reader" "qsbr generic"
    "bp c" "bp reader" "bp generic"
    "mb c" "mb c-checked" "mb reader" "mb generic"
)

declare -A measured
for entry in "${loops[@]}"; do
    read -r flavor loop <<<"$entry"
    out="$work/callgrind.$flavor.$loop"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$work/rcu-stress" read-cost --flavor "$flavor" --loop "$loop" \
        --iterations "$iterations" --rounds 1 >"$work/stdout" 2>"$work/stderr" || {
        echo "FAIL: read-cost --flavor $flavor --loop $loop failed under valgrind:" >&2
        cat "$work/stdout" "$work/stderr" >&2
        exit 1
    }
    # Only this loop ran: its function is the C loop (creference_*) or the Swift one
    # (ReadCostLoops, possibly merged with an identical specialisation). The largest
    # inclusive count among them is the loop itself (a thunk calling it counts less).
    if [[ $loop == c* ]]; then pattern='creference_[a-z_]*read_loop'; else pattern='ReadCostLoops'; fi
    instructions=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
        awk -v pattern="$pattern" '$0 ~ pattern && $1 ~ /^[0-9,]+$/ { gsub(",", "", $1); if ($1 > max) max = $1 } END { print max + 0 }')
    if [[ $instructions -eq 0 ]]; then
        echo "FAIL: no $pattern function in the callgrind profile of $flavor $loop" >&2
        exit 1
    fi
    measured[$entry]=$(awk -v i="$instructions" -v r="$reads" 'BEGIN { printf "%.2f", i / r }')
done

if $update; then
    {
        echo "# Instructions per read of each read-cost loop (scripts/check-read-instructions.sh --update)."
        echo "# flavor loop instructions"
        for entry in "${loops[@]}"; do echo "$entry ${measured[$entry]}"; done
    } >"$expected_file"
    echo "wrote $expected_file"
fi

status=0
printf '%-6s %-19s %9s %9s\n' flavor loop measured expected
for entry in "${loops[@]}"; do
    read -r flavor loop <<<"$entry"
    value=${measured[$entry]}
    expected=$(awk -v f="$flavor" -v l="$loop" '$1 == f && $2 == l { print $3 }' "$expected_file")
    printf '%-6s %-19s %9s %9s\n' "$flavor" "$loop" "$value" "${expected:--}"
    if [[ -z $expected ]]; then
        echo "FAIL: no expected count for $flavor $loop in $expected_file" >&2
        status=1
        continue
    fi
    verdict=$(awk -v v="$value" -v e="$expected" 'BEGIN {
        slack = e * 0.02; if (slack < 0.25) slack = 0.25
        if (v > e + slack) print "over"; else if (v < e - slack) print "under"; else print "ok" }')
    if [[ $verdict == over ]]; then
        echo "FAIL: $flavor $loop executes $value instructions per read, expected $expected (tolerance 2% or 0.25)" >&2
        status=1
    elif [[ $verdict == under ]]; then
        echo "note: $flavor $loop improved to $value instructions per read (expected $expected): run with --update"
    fi
done

# Parity: no Swift loop executes more instructions per read than its same-work C loop.
pairs=(
    "memb reader|memb c" "memb generic|memb c-checked"
    "qsbr reader|qsbr c-guarded" "qsbr generic|qsbr c-guarded-offline"
    "bp reader|bp c" "bp generic|bp c"
    "mb reader|mb c-checked" "mb generic|mb c-checked"
)
for pair in "${pairs[@]}"; do
    swift_loop=${pair%|*}
    c_loop=${pair#*|}
    if awk -v s="${measured[$swift_loop]}" -v c="${measured[$c_loop]}" 'BEGIN { exit !(s > c + 0.05) }'; then
        echo "FAIL: $swift_loop executes ${measured[$swift_loop]} instructions per read, more than $c_loop's ${measured[$c_loop]}" >&2
        status=1
    fi
done

if [[ $status -eq 0 ]]; then
    echo "OK: every read loop within its expected count; no Swift loop above its same-work C loop"
fi
exit $status
