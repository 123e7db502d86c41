/*
 * CURCUMemb: liburcu's memb flavor (membarrier-based readers) for Swift.
 *
 * Swift cannot import liburcu's function-like macros nor the `_LGPL_SOURCE`
 * name aliases, so every fast path is re-exposed here as an always-inline
 * function. `_LGPL_SOURCE` must be defined in this header (a cSettings define
 * does not reach Swift's view of it): without it the read side silently calls
 * the exported functions at ten times the cost.
 *
 * This module also carries the flavor-independent pointer operations
 * (`curcu_pointer_*`), because every Swift RCU build links memb, the default.
 */
#ifndef CURCU_MEMB_H
#define CURCU_MEMB_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <urcu/urcu-memb.h>
#include "CLockdepThread.h"

#define CURCU_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------------
 * Pointers: `rcu_dereference` / `rcu_assign_pointer` / `rcu_xchg_pointer` /
 * `rcu_cmpxchg_pointer`, written with __atomic builtins so ThreadSanitizer
 * sees them (liburcu's uatomic_* is inline asm; same machine code on x86).
 * ------------------------------------------------------------------------- */

/* rcu_dereference: a consume load (what liburcu does in C11 mode). */
CURCU_INLINE void *curcu_pointer_load(void *const *slot) {
    return __atomic_load_n(slot, __ATOMIC_CONSUME);
}

/* rcu_assign_pointer: a release store, so readers see an initialised object. */
CURCU_INLINE void curcu_pointer_publish(void **slot, void *value) {
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
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

/* A relaxed load for writers that hold the update-side lock (rcu_dereference_protected). */
CURCU_INLINE void *curcu_pointer_load_protected(void *const *slot) {
    return __atomic_load_n(slot, __ATOMIC_RELAXED);
}

/* A callback queued with call_rcu: `invoke(context)` runs on a call_rcu worker
 * thread after a grace period. The shim wraps it in a C-layout node whose
 * rcu_head has a stable address and frees the node after the call. */
typedef void (*curcu_invoke_fn)(void *context);

/* The visitor of `curcu_*_for_each_blocking_reader`. */
typedef void (*curcu_reader_visitor)(void *ctx, long tid, const char *name);

/* The calling thread's stall-detector wait slot (a retained Swift object), or NULL:
 * a C thread-local, read with one load on every synchronize/barrier. */
extern __thread void *curcu_current_wait_slot;
CURCU_INLINE void *curcu_wait_slot(void) { return curcu_current_wait_slot; }
CURCU_INLINE void curcu_set_wait_slot(void *slot) { curcu_current_wait_slot = slot; }

/* The kernel thread id and pthread name of the calling thread, for diagnostics. */
CURCU_INLINE long curcu_current_tid(void) { return (long)syscall(SYS_gettid); }
int curcu_current_thread_name(char *buffer, size_t length);
/* The pthread name of another live thread of this process. */
int curcu_thread_name(pthread_t thread, char *buffer, size_t length);
/* Names the calling thread (at most 15 bytes are kept). */
int curcu_set_current_thread_name(const char *name);
/* Writes a diagnostic line to standard error (unbuffered, safe from any thread). */
CURCU_INLINE void curcu_print_error(const char *line) {
    fputs(line, stderr);
    fflush(stderr);
}

/* ---------------------------------------------------------------------------
 * memb read side.
 * ------------------------------------------------------------------------- */

/* Registers the calling thread and arranges its unregistration at thread exit. */
void curcu_memb_register_thread_auto(void);

CURCU_INLINE bool curcu_memb_is_registered(void) {
    return URCU_TLS(urcu_memb_reader).registered;
}

/* Read lock with the registration check that makes forgetting it impossible. */
CURCU_INLINE void curcu_memb_read_lock(void) {
    if (__builtin_expect(!URCU_TLS(urcu_memb_reader).registered, 0))
        curcu_memb_register_thread_auto();
    urcu_memb_read_lock();
}

/*
 * A reader scope's sections. `scope` is taken when the scope opens, on a registered
 * thread (curcu_memb_reader_state()): the address of that thread's liburcu reader
 * state when the kernel's membarrier backs the read side, NULL when it does not.
 * liburcu fixes that choice at init, before any registration, so a non-NULL scope
 * proves for the whole process that a reader's barriers are compiler-only.
 *
 * Lock: on the scope's thread, liburcu's counter protocol with compiler barriers;
 * anywhere else (a closure run on another thread, which Dispatch allows), and
 * whenever scope is NULL, liburcu's checked path, which registers the running thread.
 * Unlock: the same protocol on the running thread's own state, valid on any thread
 * once scope is non-NULL; with liburcu's full fences when it is NULL. Either way the
 * section is counted in the running thread's state, which only that thread writes.
 */
CURCU_INLINE void *curcu_memb_reader_state(void) {
    /* Read after the registration that ran liburcu's init, so the flag is final. */
    return urcu_memb_has_sys_membarrier ? (void *)&URCU_TLS(urcu_memb_reader) : NULL;
}

/* Entry with sys_membarrier on: the outermost entry copies the grace-period counter
 * (its phase, nest count 1), a nested one adds 1. Selected, not branched: reading
 * the global counter when nested is harmless, and the loop is branch-bound. */
CURCU_INLINE void curcu_memb_read_lock_membarrier(void) {
    unsigned long *ctr = &URCU_TLS(urcu_memb_reader).ctr;
    cmm_barrier();
    unsigned long nest = __atomic_load_n(ctr, __ATOMIC_RELAXED);
    unsigned long gp = __atomic_load_n(&urcu_memb_gp.ctr, __ATOMIC_RELAXED);
    __atomic_store_n(ctr, (nest & URCU_GP_CTR_NEST_MASK) ? nest + URCU_GP_COUNT : gp, __ATOMIC_RELAXED);
    /* The writer's membarrier() orders the store before the section's loads. */
    cmm_barrier();
}

/* liburcu's exit protocol; `fenced` (a constant at every call) picks full fences for
 * a process without sys_membarrier. Only the outermost exit may wake a waiting grace
 * period; testing the futex first keeps the common path to one branch. */
CURCU_INLINE void curcu_memb_read_unlock_protocol(bool fenced) {
    unsigned long *ctr = &URCU_TLS(urcu_memb_reader).ctr;
    if (fenced) cmm_smp_mb(); else cmm_barrier();
    unsigned long nest = __atomic_load_n(ctr, __ATOMIC_RELAXED);
    __atomic_store_n(ctr, nest - URCU_GP_COUNT, __ATOMIC_RELAXED);
    if (fenced) cmm_smp_mb(); else cmm_barrier();
    if (__builtin_expect(__atomic_load_n(&urcu_memb_gp.futex, __ATOMIC_RELAXED) == -1, 0)
        && (nest & URCU_GP_CTR_NEST_MASK) == URCU_GP_COUNT)
        urcu_common_wake_up_gp(&urcu_memb_gp);
}

CURCU_INLINE void curcu_memb_read_lock_in_scope(const void *scope) {
    if (__builtin_expect(scope != (const void *)&URCU_TLS(urcu_memb_reader), 0)) {
        curcu_memb_read_lock();
        return;
    }
    curcu_memb_read_lock_membarrier();
}

CURCU_INLINE void curcu_memb_read_unlock_in_scope(const void *scope) {
    /* NULL: liburcu's full-fence unlock, written here because clang keeps liburcu's
     * static inline out of line on a cold path. */
    if (__builtin_expect(scope == NULL, 0))
        curcu_memb_read_unlock_protocol(true);
    else
        curcu_memb_read_unlock_protocol(false);
}

/* The bare liburcu fast path, for callers that already know the thread is registered. */
CURCU_INLINE void curcu_memb_read_lock_registered(void) { urcu_memb_read_lock(); }
CURCU_INLINE void curcu_memb_read_unlock(void) { urcu_memb_read_unlock(); }
CURCU_INLINE bool curcu_memb_read_ongoing(void) { return urcu_memb_read_ongoing() != 0; }

/* Idempotent explicit registration; unregistering also cancels the exit hook. */
void curcu_memb_register_thread(void);
void curcu_memb_unregister_thread(void);
/* Reader scopes (withReader): enter registers (qsbr: and brings online, returning
 * whether it did); exit undoes what its enter did; scopes is how many are open. */
bool curcu_memb_reader_enter(void);
void curcu_memb_reader_exit(bool brought_online);
unsigned curcu_memb_reader_scopes(void);

/* ---------------------------------------------------------------------------
 * memb update side.
 * ------------------------------------------------------------------------- */
CURCU_INLINE void curcu_memb_synchronize(void) { urcu_memb_synchronize_rcu(); }
CURCU_INLINE void curcu_memb_barrier(void) { urcu_memb_barrier(); }

/* call_rcu(invoke, context); registers the thread if needed and installs the fork hooks once. */
void curcu_memb_call(curcu_invoke_fn invoke, void *context);
/* Callbacks queued and not yet run; callbacks run since start. */
long curcu_memb_pending_callbacks(void);
long curcu_memb_completed_callbacks(void);
/* The backlog policy (RCUBacklogPolicy): retire's fast path reads the flag inline; it is
 * raised when the backlog reaches the high-water mark, lowered at or below the low one. */
extern int curcu_memb_backlog_over;
CURCU_INLINE bool curcu_memb_backlog_is_over(void) {
    return __atomic_load_n(&curcu_memb_backlog_over, __ATOMIC_RELAXED) != 0;
}
bool curcu_memb_backlog_recheck(void);
void curcu_memb_set_backlog_marks(long high, long low);
void curcu_memb_backlog_stats(long *enqueued, long *completed, long *oldest_age_ns,
                              double *retire_rate, double *reclaim_rate);
/* True while the calling thread runs a callback queued with curcu_memb_call. */
bool curcu_memb_in_callback(void);

/* defer_rcu: batched, runs `fn(p)` after a grace period on a per-thread defer thread. */
void curcu_memb_defer(void (*fn)(void *), void *p);
void curcu_memb_defer_barrier(void);

/* call_rcu worker placement. */
CURCU_INLINE struct call_rcu_data *curcu_memb_create_call_rcu_data(unsigned long flags, int cpu) {
    return urcu_memb_create_call_rcu_data(flags, cpu);
}
CURCU_INLINE void curcu_memb_call_rcu_data_free(struct call_rcu_data *crdp) { urcu_memb_call_rcu_data_free(crdp); }
CURCU_INLINE struct call_rcu_data *curcu_memb_get_default_call_rcu_data(void) { return urcu_memb_get_default_call_rcu_data(); }
CURCU_INLINE struct call_rcu_data *curcu_memb_get_thread_call_rcu_data(void) { return urcu_memb_get_thread_call_rcu_data(); }
CURCU_INLINE void curcu_memb_set_thread_call_rcu_data(struct call_rcu_data *crdp) { urcu_memb_set_thread_call_rcu_data(crdp); }
CURCU_INLINE int curcu_memb_create_all_cpu_call_rcu_data(unsigned long flags) { return urcu_memb_create_all_cpu_call_rcu_data(flags); }
CURCU_INLINE void curcu_memb_free_all_cpu_call_rcu_data(void) { urcu_memb_free_all_cpu_call_rcu_data(); }

/* Fork hooks (installed with pthread_atfork by curcu_memb_call; exposed for callers that fork by hand). */
CURCU_INLINE void curcu_memb_before_fork(void) { urcu_memb_call_rcu_before_fork(); }
CURCU_INLINE void curcu_memb_after_fork_parent(void) { urcu_memb_call_rcu_after_fork_parent(); }
CURCU_INLINE void curcu_memb_after_fork_child(void) { urcu_memb_call_rcu_after_fork_child(); }

/* Whether the kernel's membarrier syscall backs the memb read side. */
CURCU_INLINE bool curcu_memb_has_sys_membarrier(void) { return urcu_memb_has_sys_membarrier != 0; }

/* Stall diagnostics: visits every registered thread now inside a read section. */
long curcu_memb_registered_thread_count(void);
/* Other registered readers inherited at fork(): grace periods are refused in such a child. */
long curcu_memb_stale_readers_after_fork(void);
void curcu_memb_for_each_blocking_reader(curcu_reader_visitor visit, void *ctx);

/* Lockdep's cell for this flavor's read-side pseudo-lock: a C global, so a checked read
 * section reads it with plain loads. The RCU module fills it on first use. */
extern struct clockdep_map_cell curcu_memb_lockdep_cell_storage;
CURCU_INLINE struct clockdep_map_cell *curcu_memb_lockdep_cell(void) { return &curcu_memb_lockdep_cell_storage; }

#endif /* CURCU_MEMB_H */
