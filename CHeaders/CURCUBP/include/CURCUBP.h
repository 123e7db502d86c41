/*
 * CURCUBP: liburcu's bp flavor (bulletproof readers that register themselves) for Swift.
 *
 * Swift cannot import liburcu's function-like macros nor the `_LGPL_SOURCE`
 * name aliases, so every fast path is re-exposed here as an always-inline
 * function. `_LGPL_SOURCE` must be defined in this header (a cSettings define
 * does not reach Swift's view of it): without it the read side silently calls
 * the exported functions at ten times the cost.
 */
#ifndef CURCU_BP_H
#define CURCU_BP_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <urcu/urcu-bp.h>
#include "CLockdepThread.h"

#define CURCU_INLINE static inline __attribute__((always_inline))

/* A callback queued with call_rcu: `invoke(context)` runs on a call_rcu worker
 * thread after a grace period. The shim wraps it in a C-layout node whose
 * rcu_head has a stable address and frees the node after the call. */
typedef void (*curcu_bp_invoke_fn)(void *context);
typedef void (*curcu_bp_reader_visitor)(void *ctx, long tid, const char *name);

/* ---------------------------------------------------------------------------
 * bp read side.
 * ------------------------------------------------------------------------- */

/* bp ("bulletproof") readers register themselves on their first read lock and
 * are reclaimed by liburcu when the thread exits. */
CURCU_INLINE bool curcu_bp_is_registered(void) { return URCU_TLS(urcu_bp_reader) != NULL; }

CURCU_INLINE void curcu_bp_read_lock(void) { urcu_bp_read_lock(); }
CURCU_INLINE void curcu_bp_read_lock_registered(void) { urcu_bp_read_lock(); }
CURCU_INLINE void curcu_bp_read_unlock(void) { urcu_bp_read_unlock(); }
CURCU_INLINE bool curcu_bp_read_ongoing(void) { return urcu_bp_read_ongoing() != 0; }

/* Explicit registration (optional for bp: it only moves the registration cost). */
void curcu_bp_register_thread(void);
void curcu_bp_unregister_thread(void);
/* Reader scopes (withReader): enter registers (qsbr: and brings online, returning
 * whether it did); exit undoes what its enter did; scopes is how many are open. */
bool curcu_bp_reader_enter(void);
void curcu_bp_reader_exit(bool brought_online);
unsigned curcu_bp_reader_scopes(void);

/* ---------------------------------------------------------------------------
 * bp update side.
 * ------------------------------------------------------------------------- */
CURCU_INLINE void curcu_bp_synchronize(void) { urcu_bp_synchronize_rcu(); }
CURCU_INLINE void curcu_bp_barrier(void) { urcu_bp_barrier(); }

/* call_rcu(invoke, context); registers the thread if needed and installs the fork hooks once. */
void curcu_bp_call(curcu_bp_invoke_fn invoke, void *context);
/* Callbacks queued and not yet run; callbacks run since start. */
long curcu_bp_pending_callbacks(void);
long curcu_bp_completed_callbacks(void);
/* The backlog policy (RCUBacklogPolicy): retire's fast path reads the flag inline; it is
 * raised when the backlog reaches the high-water mark, lowered at or below the low one. */
extern int curcu_bp_backlog_over;
CURCU_INLINE bool curcu_bp_backlog_is_over(void) {
    return __atomic_load_n(&curcu_bp_backlog_over, __ATOMIC_RELAXED) != 0;
}
bool curcu_bp_backlog_recheck(void);
void curcu_bp_set_backlog_marks(long high, long low);
void curcu_bp_backlog_stats(long *enqueued, long *completed, long *oldest_age_ns,
                              double *retire_rate, double *reclaim_rate);
/* True while the calling thread runs a callback queued with curcu_bp_call. */
bool curcu_bp_in_callback(void);

/* defer_rcu: batched, runs `fn(p)` after a grace period on a per-thread defer thread. */
void curcu_bp_defer(void (*fn)(void *), void *p);
void curcu_bp_defer_barrier(void);

/* call_rcu worker placement. */
CURCU_INLINE struct call_rcu_data *curcu_bp_create_call_rcu_data(unsigned long flags, int cpu) {
    return urcu_bp_create_call_rcu_data(flags, cpu);
}
CURCU_INLINE void curcu_bp_call_rcu_data_free(struct call_rcu_data *crdp) { urcu_bp_call_rcu_data_free(crdp); }
CURCU_INLINE struct call_rcu_data *curcu_bp_get_default_call_rcu_data(void) { return urcu_bp_get_default_call_rcu_data(); }
CURCU_INLINE struct call_rcu_data *curcu_bp_get_thread_call_rcu_data(void) { return urcu_bp_get_thread_call_rcu_data(); }
CURCU_INLINE void curcu_bp_set_thread_call_rcu_data(struct call_rcu_data *crdp) { urcu_bp_set_thread_call_rcu_data(crdp); }
CURCU_INLINE int curcu_bp_create_all_cpu_call_rcu_data(unsigned long flags) { return urcu_bp_create_all_cpu_call_rcu_data(flags); }
CURCU_INLINE void curcu_bp_free_all_cpu_call_rcu_data(void) { urcu_bp_free_all_cpu_call_rcu_data(); }

/* Fork hooks (installed with pthread_atfork by curcu_bp_call; exposed for callers that fork by hand).
 * bp also needs its own registry hooks around fork; the shim's handlers call both. */
CURCU_INLINE void curcu_bp_before_fork(void) { urcu_bp_call_rcu_before_fork(); }
CURCU_INLINE void curcu_bp_after_fork_parent(void) { urcu_bp_call_rcu_after_fork_parent(); }
CURCU_INLINE void curcu_bp_after_fork_child(void) { urcu_bp_call_rcu_after_fork_child(); }

/* Whether the kernel's membarrier syscall backs the bp read side. */
CURCU_INLINE bool curcu_bp_has_sys_membarrier(void) { return urcu_bp_has_sys_membarrier != 0; }

/* Stall diagnostics: visits every registered thread now inside a read section. */
long curcu_bp_registered_thread_count(void);
/* Other registered readers inherited at fork(): grace periods are refused in such a child. */
long curcu_bp_stale_readers_after_fork(void);
void curcu_bp_for_each_blocking_reader(curcu_bp_reader_visitor visit, void *ctx);

/* Lockdep's cell for this flavor's read-side pseudo-lock: a C global, so a checked read
 * section reads it with plain loads. The RCU module fills it on first use. */
extern struct clockdep_map_cell curcu_bp_lockdep_cell_storage;
CURCU_INLINE struct clockdep_map_cell *curcu_bp_lockdep_cell(void) { return &curcu_bp_lockdep_cell_storage; }

#endif /* CURCU_BP_H */
