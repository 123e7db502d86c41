#!/usr/bin/env bash
# Prints the disassembly of the qsbr read loops of `rcu-stress read-cost` and
# counts the instructions of each loop body, to show what a qsbr read section costs:
#   - creference_qsbr_read_loop                 the C loop (liburcu inline, -O2): no instruction
#   - ReadCostLoops.swiftReaderLoop<RCUQSBR>     a section in a withReader scope (the nesting
#                                                depth counted in a thread-local, the online check)
#   - ReadCostLoops.swiftReadLoop<RCUQSBR>       the generic RCUQSBR.read section (the same, and
#                                                online/offline when the thread is not online)
# A loop body is the code from a backward conditional branch's target to the branch.
#
# Usage: scripts/disasm-qsbr.sh [path/to/rcu-stress]   (default: .build/release/rcu-stress)
set -euo pipefail
binary=${1:-$(dirname "$0")/../.build/release/rcu-stress}
[[ -x $binary ]] || { echo "disasm-qsbr: no executable at $binary (swift build -c release)" >&2; exit 2; }

symbols=$(nm "$binary" | awk '{print $NF}')
find_symbol() { grep -E "$1" <<<"$symbols" | head -n 1 || true; }

show() {
    local title=$1 symbol=$2
    if [[ -z $symbol ]]; then
        echo "== $title: not found in $binary" >&2
        return 1
    fi
    echo "== $title"
    echo "   $symbol"
    local listing
    listing=$(objdump -d --no-show-raw-insn --disassemble="$symbol" "$binary" \
        | awk '/^[0-9a-f]+ <.*>:$/ { on = 1; next } /^Disassembly/ { on = 0 } on && /^ +[0-9a-f]+:/')
    echo "$listing"
    # Loop bodies: for each backward jump inside the function, the instructions from its target to it.
    awk '
        function hex(s,    i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
        { sub(/^ +/, ""); a[NR] = hex(substr($1, 1, length($1) - 1)); line[NR] = $0 }
        $2 ~ /^j/ && $2 != "jmp" && $3 ~ /^[0-9a-f]+$/ { target[NR] = hex($3) }
        END {
            for (i = 1; i <= NR; i++) {
                if (!(i in target) || target[i] > a[i] || target[i] < a[1]) continue
                n = 0; body = ""
                for (k = 1; k <= i; k++) if (a[k] >= target[i]) {
                    n++; split(line[k], f, "\t"); sub(/ <.*>$/, "", f[2]); gsub(/ +/, " ", f[2])
                    body = body (body == "" ? "" : "; ") f[2] (f[3] == "" ? "" : " " f[3])
                }
                printf "-- loop body %x..%x: %d instructions: %s\n", target[i], a[i], n, body
            }
        }' <<<"$listing"
    echo
}

show "C: creference_qsbr_read_loop" "$(find_symbol '^creference_qsbr_read_loop$')"
# The optimiser may move the body into a signature-specialised copy (suffix Tf...), leaving a thunk.
registered=$(find_symbol 'swiftReaderLoop.*7RCUQSBRO_Tt2g5Tf[0-9a-z_]+$')
show "Swift: withReader scope section" "${registered:-$(find_symbol 'swiftReaderLoop.*7RCUQSBRO_Tt2g5')}"
show "Swift: generic RCUQSBR.read" "$(find_symbol 'ReadCostLoops.*swift.*Loop.*7RCUQSBRO_Tt1g5$')"

cat <<'NOTE'
Reading the counts: liburcu's qsbr read lock and unlock are empty, so the C loop body is
only "load the slot, add the value, count down" (clang unrolls it by 4). Every Swift qsbr
section also counts its nesting depth in a thread-local, in every build, so that
quiescentState(), offline {} and grace-period waits inside a section are refused, and
checks the thread is online (a call brings an offline thread online for the section).
NOTE
