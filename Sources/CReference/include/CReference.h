/*
 * CReference: plain-C read loops over liburcu, the in-run baseline of
 * `rcu-stress read-cost`.
 *
 * Each loop does, per iteration, exactly what a C user of liburcu writes:
 *
 *     rcu_read_lock();
 *     p = rcu_dereference(*slot);
 *     if (p)
 *         sum += ((struct creference_node *)p)->value;
 *     rcu_read_unlock();
 *
 * The NULL test is liburcu's own test_urcu reader's, and the Swift side's
 * (`withValue` calls its body only when an object is published): both loops do
 * the same work, so the ratio is the read side's cost alone.
 *
 * with liburcu's `_LGPL_SOURCE` inline fast paths, compiled -O2 by SwiftPM's
 * release configuration. liburcu's own compiler barriers (`cmm_barrier()` in
 * the lock and unlock) keep the compiler from hoisting the lock, the load or
 * the add out of the loop.
 *
 * This header only declares the loops: the liburcu headers stay in the .c
 * files, one flavor per file (liburcu's flavor headers cannot share a
 * translation unit).
 */
#ifndef CREFERENCE_H
#define CREFERENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "CReferenceReadCount.h"

/* The object the loops dereference: one integer, like the Swift benchmark's final class. */
struct creference_node {
    intptr_t value;
};

/* Allocates a node holding `value` (free it with creference_node_destroy). */
struct creference_node *creference_node_create(intptr_t value);
void creference_node_destroy(struct creference_node *node);

/*
 * Returns `value`, from another translation unit: an optimisation barrier.
 * The Swift benchmark builds its objects with it; with a literal, Swift's
 * let-property propagation proves every BenchNode.value is 1 and deletes the
 * load the C loop still does.
 */
intptr_t creference_opaque(intptr_t value);

/*
 * The read loops: `iterations` lock / dereference / add / unlock sequences
 * over `*slot` (which must point to a struct creference_node). Return the sum
 * of the values read, so the work cannot be discarded.
 *
 * memb, qsbr and mb register the calling thread first (idempotent, outside
 * the loop); qsbr leaves it registered and online. bp registers itself.
 */
uint64_t creference_memb_read_loop(void **slot, uint64_t iterations);
uint64_t creference_qsbr_read_loop(void **slot, uint64_t iterations);
uint64_t creference_bp_read_loop(void **slot, uint64_t iterations);
uint64_t creference_mb_read_loop(void **slot, uint64_t iterations);

/*
 * The same work as the Swift API's sections, whose guarantees cost instructions that
 * liburcu leaves to its caller (the instruction gate compares each Swift loop with these):
 *
 * - memb, mb: the registration check of every generic read lock.
 * - qsbr guarded: the online test (a section on an offline thread goes online for its
 *   duration) and the nesting depth (misuse inside a section is refused), on a thread
 *   that is online (`online`, a reader scope) or offline (a generic section outside one).
 * - qsbr online/offline: liburcu's extended quiescent state, online and offline around
 *   each read, the bare C equivalent of a generic section on an offline thread.
 */
uint64_t creference_memb_checked_read_loop(void **slot, uint64_t iterations);
uint64_t creference_mb_checked_read_loop(void **slot, uint64_t iterations);
uint64_t creference_qsbr_guarded_read_loop(void **slot, uint64_t iterations, bool online);
uint64_t creference_qsbr_online_offline_read_loop(void **slot, uint64_t iterations);

/* The same loop under an uncontended pthread rwlock (read side) and mutex. */
uint64_t creference_rwlock_read_loop(void **slot, uint64_t iterations);
uint64_t creference_mutex_read_loop(void **slot, uint64_t iterations);

/*
 * `iterations` pthread_mutex_lock/unlock pairs on `mutex`, each with the least a lockdep-style
 * validator does on a cached chain (held-stack push, chain-cache probe, pop): the floor
 * `lock-cost` prints beside CheckedMutex. Returns `iterations`, or 0 if a probe missed.
 */
uint64_t creference_lockdep_floor_loop(pthread_mutex_t *mutex, uint32_t class_id, uint64_t iterations);

/*
 * `iterations` pthread_mutex_lock/unlock pairs on `mutex`, each with CREFERENCE_PAD_INSTRUCTIONS
 * register additions around it (four chains) and no other work of its own: a yardstick for
 * what simple work beside the pair's atomic instructions costs on this machine (`lock-cost`
 * prints it). Returns `iterations`, or 0 if an addition was lost.
 */
#define CREFERENCE_PAD_INSTRUCTIONS 64
uint64_t creference_padded_pair_loop(pthread_mutex_t *mutex, uint64_t iterations);

/*
 * Whether glibc still counts this process as single-threaded (`__libc_single_threaded`):
 * until a process starts its first thread, glibc's pthread_mutex_lock and unlock take no
 * atomic instruction, a shortcut no lock shared between threads ever sees.
 */
bool creference_process_is_single_threaded(void);

/*
 * One iteration of liburcu's `loop_sleep` (the benchmarks' -c, -e and -d delays):
 * `caa_cpu_relax()`, a `pause` on x86, which Swift cannot emit itself. Inline, so
 * the Swift loop that calls it is liburcu's loop instruction for instruction.
 */
static inline __attribute__((always_inline)) void creference_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("rep; nop" : : : "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" : : : "memory");
#else
    __asm__ __volatile__("" : : : "memory");
#endif
}

#endif /* CREFERENCE_H */
