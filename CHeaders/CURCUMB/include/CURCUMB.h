/*
 * CURCUMB: liburcu's mb flavor (readers with full memory barriers) for Swift.
 *
 * Swift cannot import liburcu's function-like macros nor the `_LGPL_SOURCE`
 * name aliases, so every fast path is re-exposed here as an always-inline
 * function. `_LGPL_SOURCE` must be defined in this header (a cSettings define
 * does not reach Swift's view of it): without it the read side silently calls
 * the exported functions at ten times the cost.
 */
#ifndef CURCU_MB_H
#define CURCU_MB_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <urcu/urcu-mb.h>
#include "CLockdepThread.h"

#define CURCU_INLINE static inline __attribute__((always_inline))

/* A callback queued with call_rcu: `invoke(context)` runs on a call_rcu worker
 * thread after a grace period. The shim wraps it in a C-layout node whose
 * rcu_head has a stable address and frees the node after the call. */
typedef void (*curcu_mb_invoke_fn)(void *context);
typedef void (*curcu_mb_reader_visitor)(void *ctx, long tid, const char *name);

/* ---------------------------------------------------------------------------
 * mb read side.
 * ------------------------------------------------------------------------- */

/* Registers the calling thread and arranges its unregistration at thread exit. */
void curcu_mb_register_thread_auto(void);

CURCU_INLINE bool curcu_mb_is_registered(void) {
    return URCU_TLS(urcu_mb_reader).registered;
}

/* Read lock with the registration check that makes forgetting it impossible. */
CURCU_INLINE void curcu_mb_read_lock(void) {
    if (__builtin_expect(!URCU_TLS(urcu_mb_reader).registered, 0))
        curcu_mb_register_thread_auto();
    urcu_mb_read_lock();
}

/*
 * A reader scope's read lock: `scope` is the address of the scope thread's liburcu
 * reader state (curcu_mb_reader_state()), registered for the whole scope. On that
 * thread this is liburcu's bare fast path; the comparison is loop-invariant, so a
 * hot loop pays nothing for it. Run elsewhere (a closure executed on another
 * thread), it takes the checked path, which registers that thread first.
 */
CURCU_INLINE void *curcu_mb_reader_state(void) { return &URCU_TLS(urcu_mb_reader); }
CURCU_INLINE void curcu_mb_read_lock_in_scope(const void *scope) {
    if (__builtin_expect(scope != (const void *)&URCU_TLS(urcu_mb_reader), 0)) {
        curcu_mb_read_lock();
        return;
    }
    urcu_mb_read_lock();
}

/* The bare liburcu fast path, for callers that already know the thread is registered. */
CURCU_INLINE void curcu_mb_read_lock_registered(void) { urcu_mb_read_lock(); }
CURCU_INLINE void curcu_mb_read_unlock(void) { urcu_mb_read_unlock(); }
CURCU_INLINE bool curcu_mb_read_ongoing(void) { return urcu_mb_read_ongoing() != 0; }

/* Idempotent explicit registration; unregistering also cancels the exit hook. */
void curcu_mb_register_thread(void);
void curcu_mb_unregister_thread(void);
/* Reader scopes (withReader): enter registers (qsbr: and brings online, returning
 * whether it did); exit undoes what its enter did; scopes is how many are open. */
bool curcu_mb_reader_enter(void);
void curcu_mb_reader_exit(bool brought_online);
unsigned curcu_mb_reader_scopes(void);

/* ---------------------------------------------------------------------------
 * mb update side.
 * ------------------------------------------------------------------------- */
CURCU_INLINE void curcu_mb_synchronize(void) { urcu_mb_synchronize_rcu(); }
CURCU_INLINE void curcu_mb_barrier(void) { urcu_mb_barrier(); }

/* call_rcu(invoke, context); registers the thread if needed and installs the fork hooks once. */
void curcu_mb_call(curcu_mb_invoke_fn invoke, void *context);
/* Callbacks queued and not yet run; callbacks run since start. */
long curcu_mb_pending_callbacks(void);
long curcu_mb_completed_callbacks(void);
/* The backlog policy (RCUBacklogPolicy): retire's fast path reads the flag inline; it is
 * raised when the backlog reaches the high-water mark, lowered at or below the low one. */
extern int curcu_mb_backlog_over;
CURCU_INLINE bool curcu_mb_backlog_is_over(void) {
    return __atomic_load_n(&curcu_mb_backlog_over, __ATOMIC_RELAXED) != 0;
}
bool curcu_mb_backlog_recheck(void);
void curcu_mb_set_backlog_marks(long high, long low);
void curcu_mb_backlog_stats(long *enqueued, long *completed, long *oldest_age_ns,
                              double *retire_rate, double *reclaim_rate);
/* True while the calling thread runs a callback queued with curcu_mb_call. */
bool curcu_mb_in_callback(void);

/* defer_rcu: batched, runs `fn(p)` after a grace period on a per-thread defer thread. */
void curcu_mb_defer(void (*fn)(void *), void *p);
void curcu_mb_defer_barrier(void);

/* call_rcu worker placement. */
CURCU_INLINE struct call_rcu_data *curcu_mb_create_call_rcu_data(unsigned long flags, int cpu) {
    return urcu_mb_create_call_rcu_data(flags, cpu);
}
CURCU_INLINE void curcu_mb_call_rcu_data_free(struct call_rcu_data *crdp) { urcu_mb_call_rcu_data_free(crdp); }
CURCU_INLINE struct call_rcu_data *curcu_mb_get_default_call_rcu_data(void) { return urcu_mb_get_default_call_rcu_data(); }
CURCU_INLINE struct call_rcu_data *curcu_mb_get_thread_call_rcu_data(void) { return urcu_mb_get_thread_call_rcu_data(); }
CURCU_INLINE void curcu_mb_set_thread_call_rcu_data(struct call_rcu_data *crdp) { urcu_mb_set_thread_call_rcu_data(crdp); }
CURCU_INLINE int curcu_mb_create_all_cpu_call_rcu_data(unsigned long flags) { return urcu_mb_create_all_cpu_call_rcu_data(flags); }
CURCU_INLINE void curcu_mb_free_all_cpu_call_rcu_data(void) { urcu_mb_free_all_cpu_call_rcu_data(); }

/* Fork hooks (installed with pthread_atfork by curcu_mb_call; exposed for callers that fork by hand). */
CURCU_INLINE void curcu_mb_before_fork(void) { urcu_mb_call_rcu_before_fork(); }
CURCU_INLINE void curcu_mb_after_fork_parent(void) { urcu_mb_call_rcu_after_fork_parent(); }
CURCU_INLINE void curcu_mb_after_fork_child(void) { urcu_mb_call_rcu_after_fork_child(); }

/* Stall diagnostics: visits every registered thread now inside a read section. */
long curcu_mb_registered_thread_count(void);
/* Other registered readers inherited at fork(): grace periods are refused in such a child. */
long curcu_mb_stale_readers_after_fork(void);
void curcu_mb_for_each_blocking_reader(curcu_mb_reader_visitor visit, void *ctx);

/* Lockdep's cell for this flavor's read-side pseudo-lock: a C global, so a checked read
 * section reads it with plain loads. The RCU module fills it on first use. */
extern struct clockdep_map_cell curcu_mb_lockdep_cell_storage;
CURCU_INLINE struct clockdep_map_cell *curcu_mb_lockdep_cell(void) { return &curcu_mb_lockdep_cell_storage; }

#endif /* CURCU_MB_H */
