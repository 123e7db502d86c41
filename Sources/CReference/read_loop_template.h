/*
 * A flavor's C read loops, written once: each CReference<Flavor>.c includes its shim,
 * defines the parameters below and includes this file. After preprocessing each loop is
 * the C a liburcu user writes by hand for that flavor (the baseline the Swift loops are
 * measured against, scripts/check-read-instructions.sh).
 *
 *   CREF_FN(name)        the loop's name: creference_memb_##name
 *   CREF_URCU(name)      liburcu's name in this flavor: urcu_memb_##name
 *   CREF_SHIM(name)      the flavor shim's name: curcu_memb_##name
 *   CREF_ENTER()         before the loop (register; qsbr: go online); may be empty
 *   CREF_LEAVE()         after the loop (qsbr: go offline); may be empty
 *   CREF_CHECKED         1: also the loop with the Swift API's registration check
 *                        (`<flavor>_checked_read_loop`), for flavors with a `registered` bit
 */
#include <urcu/pointer.h>
#include "CReference.h"

uint64_t CREF_FN(read_loop)(void **slot, uint64_t iterations) {
    CREF_ENTER();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        CREF_URCU(read_lock)();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)   /* as liburcu's test_urcu reader does (see CReference.h) */
            sum += (uint64_t)p->value;
        CREF_URCU(read_unlock)();
    }
    CREF_LEAVE();
    return sum;
}

#if CREF_CHECKED
/* The same loop with the Swift API's guarantee for a generic section: an unregistered
 * thread is registered by its first read lock (liburcu leaves that to the caller). */
uint64_t CREF_FN(checked_read_loop)(void **slot, uint64_t iterations) {
    CREF_ENTER();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        if (__builtin_expect(!URCU_TLS(CREF_URCU(reader)).registered, 0))
            CREF_SHIM(register_thread_auto)();
        CREF_URCU(read_lock)();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)
            sum += (uint64_t)p->value;
        CREF_URCU(read_unlock)();
    }
    CREF_LEAVE();
    return sum;
}
#endif
