/* The memb flavor's C read loops: liburcu's own inline fast path (_LGPL_SOURCE). */
#include <CURCUMemb.h>
#include <urcu/pointer.h>
#include "CReference.h"

uint64_t creference_memb_read_loop(void **slot, uint64_t iterations) {
    curcu_memb_register_thread(); /* idempotent, out of line, outside the loop */
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        urcu_memb_read_lock();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)   /* as liburcu's test_urcu reader does (see CReference.h) */
            sum += (uint64_t)p->value;
        urcu_memb_read_unlock();
    }
    return sum;
}

/* The same loop with the Swift API's guarantee for a generic section: an unregistered
 * thread is registered by its first read lock (liburcu leaves that to the caller). */
uint64_t creference_memb_checked_read_loop(void **slot, uint64_t iterations) {
    curcu_memb_register_thread();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        if (__builtin_expect(!URCU_TLS(urcu_memb_reader).registered, 0))
            curcu_memb_register_thread_auto();
        urcu_memb_read_lock();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)
            sum += (uint64_t)p->value;
        urcu_memb_read_unlock();
    }
    return sum;
}
