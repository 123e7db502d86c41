/*
 * A flavor's slow path: see CURCUCommon.h. A header of its own because its nullability
 * is annotated (every pointer non-null unless marked), which clang then requires of
 * every pointer in the file.
 */
#ifndef CURCU_FLAVOR_OPERATIONS_H
#define CURCU_FLAVOR_OPERATIONS_H

#include <stdbool.h>
#include <pthread.h>

typedef void (*curcu_invoke_fn)(void *_Nullable context);
typedef void (*curcu_reader_visitor)(void *_Nullable ctx, long tid, const char *_Nonnull name);

#pragma clang assume_nonnull begin

/* ---- a flavor's slow path ---------------------------------------------------- */

struct call_rcu_data;
struct rcu_head;

/*
 * The out-of-line operations of one flavor, in a constant table per flavor
 * (`curcu_<flavor>_operations()`), so Swift code reaches any flavor's slow path
 * through the flavor's description instead of a switch over the four.
 */
struct curcu_flavor_operations {
    /* Grace periods: synchronize_rcu, rcu_barrier (call_rcu's callbacks). */
    void (*synchronize)(void);
    void (*barrier)(void);
    /* call_rcu(invoke, context); registers the thread if needed (qsbr: online for the call). */
    void (*call)(curcu_invoke_fn invoke, void *_Nullable context);
    /* Per-thread batches over call_rcu; never waits. The barrier hands every batch over, then rcu_barrier. */
    void (*defer)(curcu_invoke_fn invoke, void *_Nullable context);
    void (*defer_barrier)(void);
    /* liburcu's call_rcu(head, func) for a head liburcu-cds owns (rculfqueue's dummy nodes),
     * through `call`: counted in the backlog and queued inside the fork gate. */
    void (*call_rcu_head)(struct rcu_head *head, void (*func)(struct rcu_head *head));
    /* True while the calling thread runs a callback queued through this shim. */
    bool (*in_callback)(void);
    /* True inside a read section of this flavor (qsbr: the shim's nesting depth). */
    bool (*in_read_section)(void);

    /* Registration: idempotent; unregistering only threads this shim registered. */
    void (*register_thread)(void);
    void (*unregister_thread)(void);
    /* qsbr: takes the calling thread offline / online (no-ops for the other flavors). */
    void (*thread_offline)(void);
    void (*thread_online)(void);
    /* Reader scopes: enter registers (qsbr: and brings online, returning whether it did). */
    bool (*reader_enter)(void);
    void (*reader_exit)(bool brought_online);
    unsigned (*reader_scopes)(void);

    /* Diagnostics: registered readers, those holding up a grace period, fork inheritance. */
    long (*registered_thread_count)(void);
    void (*for_each_blocking_reader)(curcu_reader_visitor visit, void *_Nullable ctx);
    long (*stale_readers_after_fork)(void);
    bool (*has_sys_membarrier)(void);

    /* The call_rcu backlog (RCUBacklogPolicy). */
    long (*pending_callbacks)(void);
    long (*completed_callbacks)(void);
    bool (*backlog_recheck)(void);
    void (*set_backlog_marks)(long high, long low);
    void (*backlog_stats)(long *enqueued, long *completed, long *oldest_age_ns,
                                   double *retire_rate, double *reclaim_rate);

    /* call_rcu worker placement (liburcu's call_rcu_data API). */
    struct call_rcu_data *_Nullable (*_Nonnull create_call_rcu_data)(unsigned long flags, int cpu);
    void (*call_rcu_data_free)(struct call_rcu_data *data);
    struct call_rcu_data *_Nullable (*_Nonnull get_thread_call_rcu_data)(void);
    void (*set_thread_call_rcu_data)(struct call_rcu_data *_Nullable data);
    int (*create_all_cpu_call_rcu_data)(unsigned long flags);
    void (*free_all_cpu_call_rcu_data)(void);
    pthread_t (*get_call_rcu_thread)(struct call_rcu_data *data);
};

#pragma clang assume_nonnull end

#endif /* CURCU_FLAVOR_OPERATIONS_H */
