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
# The `rcu-stress urcu` readers (the loop compared with liburcu's test_urcu programs) are
# counted the same way: `urcu 1 0 1 --flavor F` under callgrind, the reader loop's
# inclusive instructions (`readLoop`, `readLoopQSBR`) over nr_reads, one reader and no
# writer (test_urcu's `1 0 1`: the pointer stays empty, so neither side checks a value).
# Each must stay within its expected count and at or below liburcu's `thr_reader`
# (thr_reader's inclusive instructions over nr_reads of `test_* 1 0 1`), plus, for qsbr,
# what the API's QSBR section costs over test_urcu_qsbr's loop: 4 instructions (the online
# test, 3, and the test of whether the section brought the thread online, 2; the depth
# count, an increment and a decrement, 2; less test_urcu's `assert(rcu_read_ongoing())`,
# 3, which the depth count makes 1; and the read-duration test, 1 fewer). liburcu's
# counts are measured when LIBURCU_BENCH names a directory with its test programs
# (test_urcu, test_urcu_qsbr, test_urcu_bp, test_urcu_mb, test_rwlock, test_mutex, built
# as docs/results.md says), and otherwise read from the expected file's `test_urcu` rows.
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
        awk -v pattern="$pattern" '$0 ~ pattern && $1 ~ /^[0-9,]+$/ { gsub(",", "", $1); if ($1 + 0 > max) max = $1 + 0 } END { printf "%.0f\n", max }')
    if [[ $instructions -eq 0 ]]; then
        echo "FAIL: no $pattern function in the callgrind profile of $flavor $loop" >&2
        exit 1
    fi
    measured[$entry]=$(awk -v i="$instructions" -v r="$reads" 'BEGIN { printf "%.2f", i / r }')
done

# Per-read instructions of a reader loop: the largest inclusive count of a function matching
# `pattern` in callgrind profile `profile`, over the nr_reads of SUMMARY line in `summary`.
per_read() {
    local profile=$1 pattern=$2 summary=$3 instructions nr_reads
    instructions=$(callgrind_annotate --inclusive=yes "$profile" 2>/dev/null |
        awk -v pattern="$pattern" '$0 ~ pattern && $1 ~ /^[0-9,]+$/ { gsub(",", "", $1); if ($1 + 0 > max) max = $1 + 0 } END { printf "%.0f\n", max }')
    nr_reads=$(awk '/^SUMMARY/ { for (i = 1; i <= NF; i++) if ($i == "nr_reads") print $(i + 1) }' "$summary")
    # nr_reads may be printed in e-notation (3.1786e+09): awk compares it, not bash.
    if [[ $instructions -eq 0 || -z $nr_reads ]] || ! awk -v r="$nr_reads" 'BEGIN { exit !(r + 0 > 0) }'; then
        echo "FAIL: no $pattern function or no reads in $profile ($summary)" >&2
        cat "$summary" >&2
        exit 1
    fi
    awk -v i="$instructions" -v r="$nr_reads" 'BEGIN { printf "%.2f", i / r }'
}

urcu_flavors=(memb qsbr bp mb rwlock mutex)
declare -A liburcu_program=([memb]=test_urcu [qsbr]=test_urcu_qsbr [bp]=test_urcu_bp [mb]=test_urcu_mb
    [rwlock]=test_rwlock [mutex]=test_mutex)
declare -A liburcu_measured
for flavor in "${urcu_flavors[@]}"; do
    entry="$flavor urcu-reader"
    loops+=("$entry")
    out="$work/callgrind.urcu.$flavor"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$work/rcu-stress" urcu 1 0 1 --flavor "$flavor" >"$work/stdout" 2>"$work/stderr" || {
        echo "FAIL: urcu 1 0 1 --flavor $flavor failed under valgrind:" >&2
        cat "$work/stdout" "$work/stderr" >&2
        exit 1
    }
    measured[$entry]=$(per_read "$out" 'UrcuRCUFlavorRun.*readLoop|UrcuLockBaselineRun.*readLoop' "$work/stdout")
    if [[ -n ${LIBURCU_BENCH:-} ]]; then
        program=$LIBURCU_BENCH/${liburcu_program[$flavor]}
        [[ -x $program ]] || { echo "check-read-instructions: no $program (LIBURCU_BENCH)" >&2; exit 2; }
        out="$work/callgrind.liburcu.$flavor"
        valgrind --tool=callgrind --callgrind-out-file="$out" "$program" 1 0 1 >"$work/stdout" 2>"$work/stderr" || {
            echo "FAIL: $program 1 0 1 failed under valgrind:" >&2
            cat "$work/stdout" "$work/stderr" >&2
            exit 1
        }
        liburcu_measured[$flavor]=$(per_read "$out" '\.c:thr_reader' "$work/stdout")
    fi
done

if $update; then
    {
        echo "# Instructions per read of each read-cost loop (scripts/check-read-instructions.sh --update)."
        echo "# flavor loop instructions"
        for entry in "${loops[@]}"; do echo "$entry ${measured[$entry]}"; done
        echo "# liburcu 0.13.2's thr_reader, instructions per read of \`test_* 1 0 1\` (measured with LIBURCU_BENCH)."
        for flavor in "${urcu_flavors[@]}"; do
            value=${liburcu_measured[$flavor]:-$(awk -v f="$flavor" '$1 == f && $2 == "test_urcu" { print $3 }' "$expected_file")}
            echo "$flavor test_urcu $value"
        done
    } >"$expected_file.new"
    mv "$expected_file.new" "$expected_file"
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

# Parity with liburcu's benchmark readers: no urcu reader above its thr_reader (qsbr: plus
# the 4 instructions of the API's QSBR section, see the header).
for flavor in "${urcu_flavors[@]}"; do
    c=${liburcu_measured[$flavor]:-$(awk -v f="$flavor" '$1 == f && $2 == "test_urcu" { print $3 }' "$expected_file")}
    if [[ -z $c ]]; then
        echo "FAIL: no liburcu thr_reader count for $flavor (a '$flavor test_urcu N' row in $expected_file)" >&2
        status=1
        continue
    fi
    allowance=0
    [[ $flavor == qsbr ]] && allowance=4
    swift=${measured[$flavor urcu-reader]}
    printf '%-6s %-19s %9s %9s (liburcu thr_reader%s)\n' "$flavor" "urcu vs test_urcu" "$swift" "$c" \
        "$([[ $allowance != 0 ]] && echo " + $allowance")"
    if awk -v s="$swift" -v c="$c" -v a="$allowance" 'BEGIN { exit !(s > c + a + 0.05) }'; then
        echo "FAIL: the urcu $flavor reader executes $swift instructions per read, more than liburcu's thr_reader's $c (+ $allowance)" >&2
        status=1
    fi
done

if [[ $status -eq 0 ]]; then
    echo "OK: every read loop within its expected count; no Swift loop above its same-work C loop or liburcu's thr_reader"
fi
exit $status
