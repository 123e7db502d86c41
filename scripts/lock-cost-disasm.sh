#!/usr/bin/env bash
# Lockdep's "1.00x with checks compiled out" acceptance, in machine code: prints
# the disassembly of `rcu-stress lock-cost`'s loops and single pairs
#   - LockCostLoops.plainLoop / plainPair      pthread_mutex_lock + unlock on a raw pthread_mutex_t
#   - LockCostLoops.checkedLoop / checkedPair  CheckedMutex.lock() + unlock()
# and compares the loop bodies. With checks compiled out (a plain release build) the
# checked loop must be the plain loop's instructions (the same two calls through the PLT)
# plus exactly the owner-word instructions every build keeps (CheckedMutex refuses a
# recursive lock and a release by a non-holder in every build, and answers
# isHeldByCurrentThread exactly):
#   lock:   load, clear bit 0, compare with pthread_self(), branch to the refusal   (4)
#           store the owner after pthread_mutex_lock                              (1)
#   unlock: load, compare, branch to the slow release                             (3)
#           store 0 before pthread_mutex_unlock                                   (1)
# all on one memory word (pthread_self() is read once, outside the loop). Anything more in
# the loop body (another call, another memory access, more instructions) fails the check.
#
# Usage: scripts/lock-cost-disasm.sh [path/to/rcu-stress]   (default: .build/release/rcu-stress)
# Exit status: 0 when the checks-off loop is as above; 1 otherwise (and on a build with
# checks compiled in, whose loop body is printed with its instruction count); 2 on usage errors.
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

# The loop body: from the target of the backward `jne` (the loop's own branch: the one
# jumping to a lower address) to it.
loop_body() {
    objdump -d --no-show-raw-insn --disassemble="$1" "$binary" | awk '
        # Hex addresses without a leading 0x: shorter is lower, else compare as strings.
        function below(x, y) { return length(x) != length(y) ? length(x) < length(y) : x < y }
        /^ +[0-9a-f]+:/ { sub(/^ +/, ""); a = $1; sub(/:$/, "", a); n++; addr[n] = a; text[n] = $0
            if ($2 == "jne" && target == "" && below($3, a)) { target = $3; last = n } }
        END { if (target == "") exit 1
              for (i = 1; i <= last; i++) { if (addr[i] == target) on = 1
                  if (on) { t = text[i]; sub(/^[0-9a-f]+:\t/, "", t); print t } } }' | normalise
}

# The mnemonics of a listing, one a line, sorted (a multiset).
mnemonics() { awk '{ print $1 }' | sort; }

# The memory operands other than %rip-relative ones (`0x60(%r13)`), one a line.
memory_operands() { grep -oE '(-?0x[0-9a-f]+)?\(%[a-z0-9]+(,%[a-z0-9]+,[0-9])?\)' | grep -v '%rip' || true; }

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
echo "== loop body, plain ($(wc -l <<<"$plain_body") instructions):";     echo "$plain_body"
echo "== loop body, checked ($(wc -l <<<"$checked_body") instructions):"; echo "$checked_body"

# With checks compiled in the loop reads Lockdep's state word; that build is not this check's.
if grep -q '<clockdep_state>' <<<"$(listing "$(symbol_for checkedLoop)")"; then
    echo "RESULT: checks are compiled into this build (the loop reads Lockdep's state word): not the checks-off comparison"
    exit 1
fi

calls() { grep -E '^call' || true; }
# The owner-word instructions the checks-off CheckedMutex adds, as mnemonics (see the header).
expected_extra=$(printf '%s\n' mov and cmp je mov mov cmp jne movq | sort)
extra=$(comm -13 <(mnemonics <<<"$plain_body") <(mnemonics <<<"$checked_body"))
missing=$(comm -23 <(mnemonics <<<"$plain_body") <(mnemonics <<<"$checked_body"))
words=$(memory_operands <<<"$checked_body" | sort -u)
plain_words=$(memory_operands <<<"$plain_body" | sort -u)
problems=()
[[ "$(calls <<<"$checked_body")" == "$(calls <<<"$plain_body")" ]] \
    || problems+=("the calls differ from the plain loop's")
[[ -z $missing ]] || problems+=("instructions of the plain loop are missing: $(tr '\n' ' ' <<<"$missing")")
[[ "$extra" == "$expected_extra" ]] \
    || problems+=("the extra instructions are [$(tr '\n' ' ' <<<"$extra")], expected the owner word's [$(tr '\n' ' ' <<<"$expected_extra")]")
[[ -z $plain_words ]] || problems+=("the plain loop touches memory ($plain_words): the extraction is off")
[[ $(wc -l <<<"$words") -eq 1 && -n $words ]] \
    || problems+=("the checked loop touches memory other than one owner word: [$(tr '\n' ' ' <<<"$words")]")
if (( ${#problems[@]} == 0 )); then
    echo "RESULT: the checked loop is the plain loop ($(wc -l <<<"$plain_body") instructions, the same calls)" \
         "plus the $(wc -l <<<"$extra") owner-word instructions on $words: CheckedMutex costs a pthread mutex plus its owner word"
    exit 0
fi
echo "RESULT: REGRESSION in the checks-off CheckedMutex loop:"
printf '  - %s\n' "${problems[@]}"
exit 1
