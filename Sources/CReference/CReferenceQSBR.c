/* The qsbr flavor's C read loops: liburcu's own inline fast path (_LGPL_SOURCE). */
#include <CURCUQSBR.h>
#include <urcu/pointer.h>
#include "CReference.h"

/* Registered earlier, then taken offline: online for the loop; an idle registered
 * thread must not hold up grace periods, so offline after it. */
static inline void creference_qsbr_enter(void) {
    curcu_qsbr_register_thread();   /* idempotent, out of line, outside the loop */
    if (!urcu_qsbr_read_ongoing())
        urcu_qsbr_thread_online();
}

#define CREF_FN(name) creference_qsbr_##name
#define CREF_URCU(name) urcu_qsbr_##name
#define CREF_SHIM(name) curcu_qsbr_##name
#define CREF_ENTER() creference_qsbr_enter()
#define CREF_LEAVE() urcu_qsbr_thread_offline()
#define CREF_CHECKED 0
#include "read_loop_template.h"

/* liburcu's "extended quiescent state" for a thread that is offline between reads: it
 * goes online for each read and offline after it. */
uint64_t creference_qsbr_online_offline_read_loop(void **slot, uint64_t iterations) {
    curcu_qsbr_register_thread();
    if (urcu_qsbr_read_ongoing())
        urcu_qsbr_thread_offline();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        urcu_qsbr_thread_online();
        urcu_qsbr_read_lock();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)
            sum += (uint64_t)p->value;
        urcu_qsbr_read_unlock();
        urcu_qsbr_thread_offline();
    }
    return sum;
}

/* The guarantees of the Swift API's qsbr section, written in C: the online test (a
 * section on an offline thread brings it online for its duration, registering an
 * unregistered one) and the nesting depth that lets misuse inside a section be
 * refused. With `online`, the thread is online, as in a reader scope; without it,
 * offline, as a generic section outside a scope. */
uint64_t creference_qsbr_guarded_read_loop(void **slot, uint64_t iterations, bool online) {
    curcu_qsbr_register_thread();
    if (online && !urcu_qsbr_read_ongoing())
        urcu_qsbr_thread_online();
    else if (!online && urcu_qsbr_read_ongoing())
        urcu_qsbr_thread_offline();
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        bool brought_online = !urcu_qsbr_read_ongoing();
        if (brought_online) {   /* no expect hint: clang would move the path out of line */
            if (__builtin_expect(URCU_TLS(urcu_qsbr_reader).registered, 1))
                urcu_qsbr_thread_online();
            else
                curcu_qsbr_register_thread_auto();
        }
        curcu_qsbr_depth++;
        urcu_qsbr_read_lock();
        struct creference_node *p = rcu_dereference(*slot);
        if (p)
            sum += (uint64_t)p->value;
        urcu_qsbr_read_unlock();
        curcu_qsbr_depth--;
        if (brought_online)
            urcu_qsbr_thread_offline();
    }
    if (online)
        urcu_qsbr_thread_offline();
    return sum;
}
