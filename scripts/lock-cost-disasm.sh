#!/usr/bin/env bash
# Lockdep's "1.00x with checks compiled out" acceptance, in machine code: prints
# the disassembly of `rcu-stress lock-cost`'s loops and single pairs
#   - LockCostLoops.plainLoop / plainPair      pthread_mutex_lock + unlock on a raw pthread_mutex_t
#   - LockCostLoops.checkedLoop / checkedPair  CheckedMutex.lock() + unlock()
# and compares the loop bodies. With checks compiled out (a plain release build) the
# checked loop must be the plain loop's instructions: two calls through the PLT, with
# only the address of the mutex inside CheckedMutex's storage computed (once, outside the loop).
#
# Usage: scripts/lock-cost-disasm.sh [path/to/rcu-stress]   (default: .build/release/rcu-stress)
set -euo pipefail
binary=${1:-$(dirname "$0")/../.build/release/rcu-stress}
[[ -x $binary ]] || { echo "lock-cost-disasm: no executable at $binary (swift build -c release)" >&2; exit 2; }

symbols=$(nm "$binary" | awk '{print $NF}')
symbol_for() { grep -E "LockCostLoops.*$1" <<<"$symbols" | head -n 1 || true; }

# The instructions of a function, without addresses and with jump targets normalised.
listing() {
    objdump -d --no-show-raw-insn --disassemble="$1" "$binary" \
        | awk '/^ +[0-9a-f]+:/ { sub(/^ +[0-9a-f]+:\t/, ""); print }' | normalise
}

# Drops addresses, keeps called symbols' names (jumps become `<local>`): `call 2d960 <pthread_mutex_lock@plt>` -> `call <pthread_mutex_lock@plt>`.
normalise() {
    sed -E -e 's/^(j[a-z]+ +)[0-9a-f]+ <[^>]*>$/\1<local>/' -e 's/ +[0-9a-f]+ <([^>+]*)(\+0x[0-9a-f]+)?>$/ <\1>/'
}

# The loop body: from the target of the backward `jne` to it.
loop_body() {
    objdump -d --no-show-raw-insn --disassemble="$1" "$binary" | awk '
        /^ +[0-9a-f]+:/ { sub(/^ +/, ""); addr[NR] = $1; text[NR] = $0; n = NR
            if ($2 == "jne") { target = $3 } }
        END { on = 0; for (i = 1; i <= n; i++) { if (addr[i] == target ":") on = 1; if (on) { t = text[i]; sub(/^[0-9a-f]+:\t/, "", t); print t } if (on && text[i] ~ /\tjne/) break } }' | normalise
}

status=0
for pair in "plainLoop checkedLoop" "plainPair checkedPair"; do
    set -- $pair
    plain=$(symbol_for "$1")
    checked=$(symbol_for "$2")
    [[ -n $plain && -n $checked ]] || { echo "lock-cost-disasm: $1/$2 not found in $binary" >&2; exit 2; }
    echo "== $1"; listing "$plain"
    echo "== $2"; listing "$checked"
    echo
done

plain_body=$(loop_body "$(symbol_for plainLoop)")
checked_body=$(loop_body "$(symbol_for checkedLoop)")
echo "== loop body, plain:";   echo "$plain_body"
echo "== loop body, checked:"; echo "$checked_body"
if [[ "$plain_body" == "$checked_body" ]]; then
    echo "RESULT: identical loop bodies ($(wc -l <<<"$plain_body") instructions): CheckedMutex costs exactly a pthread mutex"
else
    echo "RESULT: the loop bodies differ (expected with checks compiled in)"
    status=1
fi
exit $status
