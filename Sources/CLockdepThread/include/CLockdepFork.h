/*
 * CLockdepFork: the package's fork() handlers, run as one group at one fixed place
 * among the process's pthread_atfork handlers.
 *
 * glibc runs prepare handlers in reverse registration order and parent and child
 * handlers in registration order. liburcu's child hook (installed by the flavor
 * shims) restarts the call_rcu workers, and a worker's first callback in the child
 * can take a package lock (Lockdep's graph lock, to name the new thread): that lock
 * must be whole and unlocked before the worker starts. Registering the package's
 * handlers one by one, whenever each type happened to be first used, left their
 * order relative to liburcu's to chance. The group is registered once, before any
 * shim registers liburcu's (a constructor, and each shim asks for it first), so:
 *   prepare: liburcu's hooks pause the workers, then the package takes its locks;
 *   child:   the package makes its locks new, then liburcu restarts the workers.
 * Within the group, hooks run as pthread_atfork's do: prepare in reverse
 * registration order, parent and child in registration order.
 */
#ifndef CLOCKDEP_FORK_H
#define CLOCKDEP_FORK_H

#include <stdint.h>

typedef void (*clockdep_fork_hook)(void);

/* Registers the group with pthread_atfork (once; later calls return at once). */
void clockdep_fork_install(void);

/*
 * Adds a hook triple to the group (any may be NULL). Lock-free, so a hook may be
 * registered from anywhere, even while another thread forks: a fork either runs
 * all three of a triple or none. At most 32 triples (the package registers fewer
 * than 16); one more stops the process with a message.
 */
void clockdep_fork_register(clockdep_fork_hook prepare, clockdep_fork_hook parent, clockdep_fork_hook child);

/*
 * Brackets a one-time initializer (a Swift `static let`'s, entered only between the two)
 * that may wait for a lock the group's prepare hooks take, such as Lockdep's graph lock when
 * it creates a class. Forked while one ran, a child would inherit its once half done and
 * wait for it for ever, for a thread it does not have. So a fork waits, before any of the
 * group's prepare hooks, for the initializers in progress, and an initializer that begins
 * while a fork is being prepared waits until the fork is made. Nested brackets on one
 * thread pass; a thread that forks from inside one does not wait for itself, and neither
 * does the forking thread's own bracket inside a fork hook (parent or child).
 */
void clockdep_fork_initializer_begin(void);
void clockdep_fork_initializer_end(void);

/* Whether a fork() is being prepared (between the group's first prepare step and its
 * parent hooks): for tests that make a first use race a fork. */
int clockdep_fork_is_preparing(void);

/*
 * The package's bracketed one-time values (ForkHooks.makeOnce): each slot holds its value's
 * address once made, NULL before, so every use after the first is one load and no Swift
 * once. A slot is published by the thread that made the value, inside the bracket, after
 * the value's fork hooks are registered: a fork sees all of it or none.
 */
#define CLOCKDEP_ONCE_LOCKDEP_GRAPH 0                /* Lockdep's graph (and its fork hooks) */
#define CLOCKDEP_ONCE_RCU_GRACE_PERIOD_SEQUENCES 1   /* RCUGracePeriodSequence, per flavor */
#define CLOCKDEP_ONCE_RCU_BACKLOG_STATES 2           /* RCUBacklogState, per flavor */
#define CLOCKDEP_ONCE_RCU_INLINE_RECLAIM_BATCHES 3   /* RCUInlineReclaimBatch, per flavor */
#define CLOCKDEP_ONCE_RCU_MISUSE_HANDLER 4           /* RCUMisuse's report handler */
#define CLOCKDEP_ONCE_RCU_STALL_DETECTOR 5           /* RCUStallDetector's fork hooks */
#define CLOCKDEP_ONCE_RCU_READ_MAPS 6                /* RCU's Lockdep read maps, per flavor */
#define CLOCKDEP_ONCE_SLOTS 8

extern void *clockdep_fork_once_values[CLOCKDEP_ONCE_SLOTS];

static inline __attribute__((always_inline)) void *clockdep_fork_once_value(int slot) {
    return __atomic_load_n(&clockdep_fork_once_values[slot], __ATOMIC_ACQUIRE);
}

static inline __attribute__((always_inline)) void clockdep_fork_once_publish(int slot, void *value) {
    __atomic_store_n(&clockdep_fork_once_values[slot], value, __ATOMIC_RELEASE);
}

/*
 * How many fork()s separate this process from the first one: 0 there, bumped in each
 * child before its hooks run. An object that needs its creator's threads (a work
 * queue's workers) records it when made; another value later means the caller is in
 * a child of fork(), where those threads do not exist.
 */
extern unsigned long clockdep_fork_generation;

static inline __attribute__((always_inline)) unsigned long clockdep_fork_generation_load(void) {
    return __atomic_load_n(&clockdep_fork_generation, __ATOMIC_RELAXED);
}

/*
 * In a child of fork(), the clockdep_thread_identity() of the thread that forked it, which
 * goes on in the child (every other thread of the parent is gone); 0 in the first process.
 * A lock its holder took before the fork is still held by a live thread here if that
 * holder is this one.
 */
extern uintptr_t clockdep_fork_thread_identity;

static inline __attribute__((always_inline)) uintptr_t clockdep_fork_thread_identity_load(void) {
    return __atomic_load_n(&clockdep_fork_thread_identity, __ATOMIC_RELAXED);
}

#endif
