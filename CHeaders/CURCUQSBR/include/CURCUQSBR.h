/*
 * CURCUQSBR: liburcu's qsbr flavor (quiescent-state-based readers) for Swift.
 *
 * Swift cannot import liburcu's function-like macros nor the `_LGPL_SOURCE`
 * name aliases, so every fast path is re-exposed here as an always-inline
 * function. `_LGPL_SOURCE` must be defined in this header (a cSettings define
 * does not reach Swift's view of it): without it the read side silently calls
 * the exported functions at ten times the cost.
 */
#ifndef CURCU_QSBR_H
#define CURCU_QSBR_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <urcu/urcu-qsbr.h>
#include "CLockdepThread.h"

#define CURCU_INLINE static inline __attribute__((always_inline))

/* A callback queued with call_rcu: `invoke(context)` runs on a call_rcu worker
 * thread after a grace period. The shim wraps it in a C-layout node whose
 * rcu_head has a stable address and frees the node after the call. */
typedef void (*curcu_qsbr_invoke_fn)(void *context);
typedef void (*curcu_qsbr_reader_visitor)(void *ctx, long tid, const char *name);

/* ---------------------------------------------------------------------------
 * qsbr read side.
 * ------------------------------------------------------------------------- */

/* Registers the calling thread (online) and arranges its unregistration at thread exit. */
void curcu_qsbr_register_thread_auto(void);

CURCU_INLINE bool curcu_qsbr_is_registered(void) {
    return URCU_TLS(urcu_qsbr_reader).registered;
}

/*
 * Two ways to read with QSBR:
 *
 * - curcu_qsbr_read_lock/unlock: the safe default used by generic code. A
 *   thread that is not online (unregistered, or offline) is brought online for
 *   the outermost section and taken offline again after it, liburcu's
 *   "extended quiescent state" pattern. Such a thread can never stall a grace
 *   period; its sections cost about what mb's do.
 * - curcu_qsbr_read_lock_registered/unlock_registered: liburcu's real QSBR
 *   read side, no instruction at all, for threads that registered explicitly
 *   and report quiescent states themselves.
 *
 * The nesting depth lets misuse (going offline inside a section) be named.
 */
extern __thread unsigned curcu_qsbr_depth;
extern __thread bool curcu_qsbr_section_onlined;

/* Out of line: register (which brings the thread online) or bring it online. */
void curcu_qsbr_enter_extended(void);
/* Out of line: take the thread offline again. */
void curcu_qsbr_leave_extended(void);

CURCU_INLINE void curcu_qsbr_read_lock(void) {
    if (curcu_qsbr_depth++ == 0 && URCU_TLS(urcu_qsbr_reader).ctr == 0)
        curcu_qsbr_enter_extended();
    urcu_qsbr_read_lock();
}
CURCU_INLINE void curcu_qsbr_read_unlock(void) {
    urcu_qsbr_read_unlock();
    if (--curcu_qsbr_depth == 0 && curcu_qsbr_section_onlined)
        curcu_qsbr_leave_extended();
}

CURCU_INLINE void curcu_qsbr_read_lock_registered(void) { urcu_qsbr_read_lock(); }
CURCU_INLINE void curcu_qsbr_read_unlock_registered(void) { urcu_qsbr_read_unlock(); }

/* liburcu's qsbr "read ongoing" means "online": QSBR has no read-side state. */
CURCU_INLINE bool curcu_qsbr_is_online(void) { return urcu_qsbr_read_ongoing() != 0; }
CURCU_INLINE void curcu_qsbr_depth_enter(void) { curcu_qsbr_depth++; }
CURCU_INLINE void curcu_qsbr_depth_exit(void) { curcu_qsbr_depth--; }
CURCU_INLINE unsigned curcu_qsbr_read_depth(void) { return curcu_qsbr_depth; }

/* Quiescent states: the reader announces it holds no RCU reference. */
CURCU_INLINE void curcu_qsbr_quiescent_state(void) { urcu_qsbr_quiescent_state(); }
CURCU_INLINE void curcu_qsbr_thread_offline(void) { urcu_qsbr_thread_offline(); }
CURCU_INLINE void curcu_qsbr_thread_online(void) { urcu_qsbr_thread_online(); }

/* Idempotent explicit registration; unregistering also cancels the exit hook. */
void curcu_qsbr_register_thread(void);
void curcu_qsbr_unregister_thread(void);
/* Reader scopes (withReader): enter registers (qsbr: and brings online, returning
 * whether it did); exit undoes what its enter did; scopes is how many are open. */
bool curcu_qsbr_reader_enter(void);
void curcu_qsbr_reader_exit(bool brought_online);
unsigned curcu_qsbr_reader_scopes(void);

/* ---------------------------------------------------------------------------
 * qsbr update side.
 * ------------------------------------------------------------------------- */
CURCU_INLINE void curcu_qsbr_synchronize(void) { urcu_qsbr_synchronize_rcu(); }
CURCU_INLINE void curcu_qsbr_barrier(void) { urcu_qsbr_barrier(); }

/* call_rcu(invoke, context); registers the thread if needed and installs the fork hooks once. */
void curcu_qsbr_call(curcu_qsbr_invoke_fn invoke, void *context);
/* Callbacks queued and not yet run; callbacks run since start. */
long curcu_qsbr_pending_callbacks(void);
long curcu_qsbr_completed_callbacks(void);
/* The backlog policy (RCUBacklogPolicy): retire's fast path reads the flag inline; it is
 * raised when the backlog reaches the high-water mark, lowered at or below the low one. */
extern int curcu_qsbr_backlog_over;
CURCU_INLINE bool curcu_qsbr_backlog_is_over(void) {
    return __atomic_load_n(&curcu_qsbr_backlog_over, __ATOMIC_RELAXED) != 0;
}
bool curcu_qsbr_backlog_recheck(void);
void curcu_qsbr_set_backlog_marks(long high, long low);
void curcu_qsbr_backlog_stats(long *enqueued, long *completed, long *oldest_age_ns,
                              double *retire_rate, double *reclaim_rate);
/* True while the calling thread runs a callback queued with curcu_qsbr_call. */
bool curcu_qsbr_in_callback(void);

/* defer_rcu: batched, runs `fn(p)` after a grace period on a per-thread defer thread. */
void curcu_qsbr_defer(void (*fn)(void *), void *p);
void curcu_qsbr_defer_barrier(void);

/* call_rcu worker placement. */
CURCU_INLINE struct call_rcu_data *curcu_qsbr_create_call_rcu_data(unsigned long flags, int cpu) {
    return urcu_qsbr_create_call_rcu_data(flags, cpu);
}
CURCU_INLINE void curcu_qsbr_call_rcu_data_free(struct call_rcu_data *crdp) { urcu_qsbr_call_rcu_data_free(crdp); }
CURCU_INLINE struct call_rcu_data *curcu_qsbr_get_default_call_rcu_data(void) { return urcu_qsbr_get_default_call_rcu_data(); }
CURCU_INLINE struct call_rcu_data *curcu_qsbr_get_thread_call_rcu_data(void) { return urcu_qsbr_get_thread_call_rcu_data(); }
CURCU_INLINE void curcu_qsbr_set_thread_call_rcu_data(struct call_rcu_data *crdp) { urcu_qsbr_set_thread_call_rcu_data(crdp); }
CURCU_INLINE int curcu_qsbr_create_all_cpu_call_rcu_data(unsigned long flags) { return urcu_qsbr_create_all_cpu_call_rcu_data(flags); }
CURCU_INLINE void curcu_qsbr_free_all_cpu_call_rcu_data(void) { urcu_qsbr_free_all_cpu_call_rcu_data(); }

/* Fork hooks (installed with pthread_atfork by curcu_qsbr_call; exposed for callers that fork by hand). */
CURCU_INLINE void curcu_qsbr_before_fork(void) { urcu_qsbr_call_rcu_before_fork(); }
CURCU_INLINE void curcu_qsbr_after_fork_parent(void) { urcu_qsbr_call_rcu_after_fork_parent(); }
CURCU_INLINE void curcu_qsbr_after_fork_child(void) { urcu_qsbr_call_rcu_after_fork_child(); }

/* Stall diagnostics: visits every online thread that has not passed a quiescent state
 * since the current grace period began. */
long curcu_qsbr_registered_thread_count(void);
/* Other registered readers inherited at fork(): grace periods are refused in such a child. */
long curcu_qsbr_stale_readers_after_fork(void);
void curcu_qsbr_for_each_blocking_reader(curcu_qsbr_reader_visitor visit, void *ctx);

/* Lockdep's cell for this flavor's read-side pseudo-lock: a C global, so a checked read
 * section reads it with plain loads. The RCU module fills it on first use. */
extern struct clockdep_map_cell curcu_qsbr_lockdep_cell_storage;
CURCU_INLINE struct clockdep_map_cell *curcu_qsbr_lockdep_cell(void) { return &curcu_qsbr_lockdep_cell_storage; }

#endif /* CURCU_QSBR_H */
