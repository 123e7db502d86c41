#!/usr/bin/env bash
# Fails unless the read side of every flavor is inlined into the release rcu-stress binary.
#
# With `_LGPL_SOURCE` in the shim headers, liburcu's read lock and unlock are
# inline functions: the binary must neither import `urcu_<flavor>_read_lock` /
# `_read_unlock` (the exported, ten-times-slower versions) nor call an
# out-of-line copy of a shim's `curcu_<flavor>_read_lock*` wrapper.
# It also checks that the Swift read loops of `read-cost` were specialised per flavor.
#
# Usage: scripts/check-inline-fast-path.sh [path/to/rcu-stress]
#        (without an argument: `swift build -c release` and check .build/release/rcu-stress)
set -euo pipefail
if [[ $# -ge 1 ]]; then
    binary=$(realpath "$1")
fi
cd "$(dirname "$0")/.."

if [[ $# -lt 1 ]]; then
    swift build -c release --product rcu-stress >&2
    binary=.build/release/rcu-stress
fi
[[ -x $binary ]] || { echo "check-inline-fast-path: no executable at $binary" >&2; exit 2; }

status=0
flavors=(memb qsbr bp mb)
read_side='read_(un)?lock|read_ongoing'

# 1. Imported (undefined) read-side symbols: the exported functions are being called.
undefined=$(nm -u "$binary" | awk '{print $NF}' | grep -E "^urcu_($(IFS='|'; echo "${flavors[*]}"))_(${read_side})(@.*)?$" || true)
if [[ -n $undefined ]]; then
    echo "FAIL: the binary imports liburcu's exported read-side functions (not inlined):" >&2
    echo "$undefined" | sed 's/^/  /' >&2
    status=1
fi

# 2. Calls to a read-side function, exported (urcu_*) or an out-of-line copy of a
#    shim wrapper (curcu_*), labelled with the calling function.
disassembly=$(objdump -d --no-show-raw-insn "$binary")
calls=$(awk -v pattern="call.*<_?c?urcu_($(IFS='|'; echo "${flavors[*]}"))_(${read_side})[a-z_]*(@plt)?>" '
    /^[0-9a-f]+ <.*>:$/ { caller = $2 }
    $0 ~ pattern { sub(/^[ \t]+/, ""); print caller "  " $0 }' <<<"$disassembly")
# Any call of liburcu's exported read side fails. (`_urcu_*` is liburcu's static inline
# fast path: an out-of-line copy of it is judged like a shim wrapper, below.)
exported=$(grep -E "<urcu_[a-z]+_read" <<<"$calls" || true)
if [[ -n $exported ]]; then
    echo "FAIL: calls of liburcu's exported read-side functions (not inlined):" >&2
    echo "$exported" | sed 's/^/  /' >&2
    status=1
fi
# A shim wrapper called from a read-cost loop fails: that is the path being measured.
in_loops=$(grep -E "^<[^>]*ReadCostLoops" <<<"$calls" || true)
if [[ -n $in_loops ]]; then
    echo "FAIL: a read-cost loop calls an out-of-line shim wrapper:" >&2
    echo "$in_loops" | sed 's/^/  /' >&2
    status=1
fi
# Elsewhere (unspecialised generic code of the RCU module, whose flavor switch holds all
# four read sides) it is reported, not fatal: such code pays a direct call per lock.
elsewhere=$(grep -vE "<urcu_[a-z]+_read|^<[^>]*ReadCostLoops" <<<"$calls" || true)
if [[ -n $elsewhere ]]; then
    echo "note: out-of-line shim read-side wrappers called from unspecialised code (not fatal):"
    echo "$elsewhere" | sed 's/^/  /'
fi

# 3. The Swift loops must be specialised per flavor (a generic, unspecialised loop
#    would go through witness tables and could not inline the fast path). The
#    optimiser may merge identical specialisations (suffix Tm) or re-specialise
#    their signature (suffix Tf...): both still count.
symbols=$(nm "$binary" | awk '{print $NF}')
for type in RCUMemb RCUQSBR RCUBulletproof RCUMemoryBarrier; do
    if ! grep -qE "ReadCostLoops.*swift.*Loop.*${#type}${type}O_Tt[12]g5" <<<"$symbols"; then
        echo "FAIL: no specialisation of the ReadCostLoops read loops for $type" >&2
        status=1
    fi
done

if [[ $status -eq 0 ]]; then
    echo "OK: $binary: read lock/unlock of ${flavors[*]} inlined; no urcu_*_read_* import or call;" \
        "swiftReadLoop specialised for each flavor"
fi
exit $status
