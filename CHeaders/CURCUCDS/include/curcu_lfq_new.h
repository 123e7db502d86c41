/*
 * The lock-free queue's constructor, in a header of its own because its nullability is
 * annotated (as the flavor operations' `call_rcu_head` it takes is), which clang then requires
 * of every pointer in the file.
 */
#ifndef CURCU_LFQ_NEW_H
#define CURCU_LFQ_NEW_H

struct cds_lfq_queue_rcu;
struct rcu_head;

#pragma clang assume_nonnull begin

/* The queue frees its dummy nodes with `call_rcu_head`: the flavor operations' one, so those
 * callbacks are counted in the backlog and queued inside the shim's fork gate like any other
 * (liburcu's own call_rcu, appended across a fork, could leave the child's worker waiting on a
 * half-linked queue for ever). */
struct cds_lfq_queue_rcu *curcu_lfq_new(void (*call_rcu_head)(struct rcu_head *head,
                                                                void (*func)(struct rcu_head *head)));

#pragma clang assume_nonnull end

#endif /* CURCU_LFQ_NEW_H */
