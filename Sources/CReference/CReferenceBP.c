/* The bp flavor's C read loop: liburcu's own inline fast path (_LGPL_SOURCE). */
#include <CURCUBP.h>
#include <urcu/pointer.h>
#include "CReference.h"

uint64_t creference_bp_read_loop(void **slot, uint64_t iterations) {
    /* bp registers the thread in its read lock (liburcu's own check, in the loop). */
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        urcu_bp_read_lock();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)   /* as liburcu's test_urcu reader does (see CReference.h) */
            sum += (uint64_t)p->value;
        urcu_bp_read_unlock();
    }
    return sum;
}
