/*
 * CURCUCommon: what every flavor shim shares, and what needs no flavor at all.
 *
 * - Pointer operations (`rcu_dereference`, `rcu_xchg_pointer`, `rcu_cmpxchg_pointer`),
 *   written with __atomic builtins so ThreadSanitizer sees them (liburcu's uatomic_*
 *   is inline asm; same machine code on x86). RCUPointer imports only this module.
 * - The callback and reader-visitor function types of every flavor's shim.
 * - The calling thread's stall-detector wait slot, kernel tid and thread names.
 * - The fork gate's test hook (every flavor's call runs it inside the gate).
 * - `struct curcu_flavor_operations`: a flavor's slow-path entry points, one
 *   constant table per flavor (defined by CHeaders/Shared/curcu_flavor_impl.inc).
 */
#ifndef CURCU_COMMON_H
#define CURCU_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>

#define CURCU_INLINE static inline __attribute__((always_inline))

/* ---- tests ---------------------------------------------------------------- */

/* Called (when set) by every flavor's call inside its fork gate, just before liburcu's
 * call_rcu: a test holds a caller there to check that fork() waits for the enqueue. */
extern void (*curcu_enqueue_test_hook)(void);
void curcu_set_enqueue_test_hook(void (*hook)(void));

/* ---- pointers ------------------------------------------------------------ */

/* rcu_dereference: a consume load (what liburcu does in C11 mode). */
CURCU_INLINE void *curcu_pointer_load(void *const *slot) {
    return __atomic_load_n(slot, __ATOMIC_CONSUME);
}

/* rcu_xchg_pointer: returns the previous value. */
CURCU_INLINE void *curcu_pointer_exchange(void **slot, void *value) {
    return __atomic_exchange_n(slot, value, __ATOMIC_SEQ_CST);
}

/* rcu_cmpxchg_pointer: returns the value found (== expected on success). */
CURCU_INLINE void *curcu_pointer_compare_exchange(void **slot, void *expected, void *desired) {
    __atomic_compare_exchange_n(slot, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}

/* The callback (curcu_invoke_fn) and reader-visitor (curcu_reader_visitor) types of
 * every flavor's shim are declared with the flavor operations, below. */
#include "curcu_flavor_operations.h"

/* ---- threads --------------------------------------------------------------- */

/* The calling thread's stall-detector wait slot (a retained Swift object), or NULL:
 * a C thread-local, read with one load on every synchronize/barrier. */
/* How deep the calling thread is in callbacks the shims queued, any flavor's (a call_rcu
 * worker running one): the grace-period fork gates let such a caller through (a fork's
 * prepare hooks wait for every worker to finish its callback). */
extern __thread int curcu_any_callback_depth;
extern __thread void *curcu_current_wait_slot;
CURCU_INLINE void *curcu_wait_slot(void) { return curcu_current_wait_slot; }
CURCU_INLINE void curcu_set_wait_slot(void *slot) { curcu_current_wait_slot = slot; }

/* The kernel thread id of the calling thread, for diagnostics. */
CURCU_INLINE long curcu_current_tid(void) { return (long)syscall(SYS_gettid); }
/* The pthread name of another live thread of this process. */
int curcu_thread_name(pthread_t thread, char *buffer, size_t length);
/* Names the calling thread (at most 15 bytes are kept). */
int curcu_set_current_thread_name(const char *name);
/* Writes a diagnostic line to standard error (unbuffered, safe from any thread). */
CURCU_INLINE void curcu_print_error(const char *line) {
    fputs(line, stderr);
    fflush(stderr);
}

#endif /* CURCU_COMMON_H */
