/*
 * CLockdepThread: what Lockdep's inlined fast path reads, kept in C so that
 * reading it costs plain loads.
 *
 * Swift has no thread-local storage cheaper than a pthread_getspecific call,
 * and a Swift global read from another module goes through an accessor call
 * (plus swift_once when its initial value is not a constant). A C `__thread`
 * or global variable read through an inline function is one load. Every
 * checked acquire and release reads the thread state and the state word; a hot
 * pseudo-lock reads its map cell.
 *
 * Accesses that other threads race with are __atomic builtins, all of them
 * here, so ThreadSanitizer never sees a plain Swift access beside a C atomic.
 */
#ifndef CLOCKDEP_THREAD_H
#define CLOCKDEP_THREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "CLockdepFork.h"   /* the package's fork() handlers (an umbrella header names every header) */

/* ---- the calling thread's state ------------------------------------------ */

extern __thread void *clockdep_current_thread_state;

static inline __attribute__((always_inline)) void *clockdep_thread_state(void) {
    return clockdep_current_thread_state;
}

static inline __attribute__((always_inline)) void clockdep_set_thread_state(void *state) {
    clockdep_current_thread_state = state;
}

/* ---- the calling thread's identity, never reused ---------------------------- */

/*
 * glibc hands an exited thread's pthread_t (its cached stack and descriptor) to the next
 * thread it creates, and a fork child's new threads get the parent's: an owner field holding
 * pthread_self() would take a later thread for an exited holder. This identity is drawn from
 * a process-wide counter on first use (a fork child's threads are new: they draw fresh ones),
 * shifted left so that bit 0 stays free for an owner word's flag. Never 0.
 */
extern __thread uintptr_t clockdep_current_thread_identity;
uintptr_t clockdep_thread_identity_assign(void);

static inline __attribute__((always_inline)) uintptr_t clockdep_thread_identity(void) {
    uintptr_t identity = clockdep_current_thread_identity;
    return __builtin_expect(identity != 0, 1) ? identity : clockdep_thread_identity_assign();
}

/* ---- the validator's state word ------------------------------------------ */

/*
 * Bit 0: validation off; bit 1: statistics on; bits 2...: generation (bumped on reset).
 * Read by every checked lock operation, written almost never: a cache line of its own, so
 * that no variable written on a hot path beside it makes every thread's next check miss.
 */
struct clockdep_state_line {
    uintptr_t word;
} __attribute__((aligned(64)));
extern struct clockdep_state_line clockdep_state;

static inline __attribute__((always_inline)) uintptr_t clockdep_state_word_load(void) {
    return __atomic_load_n(&clockdep_state.word, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) void clockdep_state_word_store(uintptr_t value) {
    __atomic_store_n(&clockdep_state.word, value, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) void clockdep_state_word_or(uintptr_t bits) {
    __atomic_fetch_or(&clockdep_state.word, bits, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) void clockdep_state_word_and(uintptr_t bits) {
    __atomic_fetch_and(&clockdep_state.word, bits, __ATOMIC_RELAXED);
}

/* ---- pseudo-locks held on hot paths --------------------------------------- */

/*
 * What an acquire of a pseudo-lock (a LockdepMap) needs, copied from the
 * Swift map into a cell once, so a hot pseudo-lock reads it without reaching
 * the Swift object. Clients define cells as C globals of their own (a zeroed
 * cell is empty). `flags` is 0 until the cell is filled (a filled map's flags
 * are never 0) and is published last, with release ordering: whoever sees them
 * sees the rest.
 *
 * `read_element` is the chain-key element of a recursive read of the map with
 * its own flags, less the irq state: an RCU read section, whose acquire is on
 * every lookup, builds its element from it with one OR.
 */
struct clockdep_map_cell {
    const void *instance;
    uint32_t class_id;
    uint8_t flags;
    /* 1 once a filler has claimed the cell (clockdep_map_cell_claim): one filler writes it. */
    uint8_t claimed;
    uint64_t read_element;
};

/*
 * A cell alone in its cache line, for a global read on a hot path (an RCU flavor's read
 * section reads its cell on every acquire): a variable beside it that another thread writes
 * (a grace period's gate, say) would make every such read a miss. Swift does not import
 * over-aligned types: C declares the global and an inline function returns `&line.cell`.
 */
struct clockdep_map_cell_line {
    struct clockdep_map_cell cell;
} __attribute__((aligned(64)));

static inline __attribute__((always_inline)) uint8_t clockdep_map_cell_flags(const struct clockdep_map_cell *cell) {
    return __atomic_load_n(&cell->flags, __ATOMIC_ACQUIRE);
}
/* The instance of a filled cell (after clockdep_map_cell_flags returned non-zero). */
static inline __attribute__((always_inline)) const void *clockdep_map_cell_instance(const struct clockdep_map_cell *cell) {
    return __atomic_load_n(&cell->instance, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) uint32_t clockdep_map_cell_class(const struct clockdep_map_cell *cell) {
    return __atomic_load_n(&cell->class_id, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) uint64_t clockdep_map_cell_read_element(const struct clockdep_map_cell *cell) {
    return __atomic_load_n(&cell->read_element, __ATOMIC_RELAXED);
}
/* Claims an empty cell for filling: true for exactly one caller, who must then fill it. */
static inline bool clockdep_map_cell_claim(struct clockdep_map_cell *cell) {
    uint8_t expected = 0;
    return __atomic_compare_exchange_n(&cell->claimed, &expected, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline __attribute__((always_inline)) void clockdep_map_cell_fill(struct clockdep_map_cell *cell,
                                                                         const void *instance, uint32_t class_id,
                                                                         uint8_t flags, uint64_t read_element) {
    __atomic_store_n(&cell->instance, instance, __ATOMIC_RELAXED);
    __atomic_store_n(&cell->class_id, class_id, __ATOMIC_RELAXED);
    __atomic_store_n(&cell->read_element, read_element, __ATOMIC_RELAXED);
    __atomic_store_n(&cell->flags, flags, __ATOMIC_RELEASE);
}

/* ---- the checked lock a thread is blocked on (for stall reports) ------------- */

/*
 * Set by a thread just before it waits for a sleeping checked lock (not a spinlock or
 * a pseudo-lock), cleared as soon as the wait returns: while it is set, the lock's
 * class node (plus one: 0 means none) and the lock's owner word as the thread saw it
 * before waiting (`serial << 1 | 1` when a thread held it exclusively). Two plain
 * stores before the wait and one after, on the lock's fast path. Written by its
 * thread only; read by other threads' diagnostics.
 */
struct clockdep_pending_acquire {
    uintptr_t holder;
    uint32_t node_plus_one;
};

static inline __attribute__((always_inline)) void clockdep_pending_set(struct clockdep_pending_acquire *cell,
                                                                       uint32_t node, uintptr_t holder) {
    __atomic_store_n(&cell->holder, holder, __ATOMIC_RELAXED);
    __atomic_store_n(&cell->node_plus_one, node + 1, __ATOMIC_RELEASE);
}
static inline __attribute__((always_inline)) void clockdep_pending_clear(struct clockdep_pending_acquire *cell) {
    __atomic_store_n(&cell->node_plus_one, 0, __ATOMIC_RELAXED);
}
/* The node plus one (0: not waiting). */
static inline __attribute__((always_inline)) uint32_t clockdep_pending_node_plus_one(const struct clockdep_pending_acquire *cell) {
    return __atomic_load_n(&cell->node_plus_one, __ATOMIC_ACQUIRE);
}
static inline __attribute__((always_inline)) uintptr_t clockdep_pending_holder(const struct clockdep_pending_acquire *cell) {
    return __atomic_load_n(&cell->holder, __ATOMIC_RELAXED);
}

/* ---- the process's main thread ----------------------------------------------- */

/* Whether the calling thread is the process's initial thread (its tid is the pid). */
static inline int clockdep_is_main_thread(void) {
    return (pid_t)syscall(SYS_gettid) == getpid();
}

/* ---- the running Swift task ---------------------------------------------------- */

/*
 * The Swift concurrency runtime's current task (NULL outside a task) and its task number,
 * both exported by the runtime with the Swift calling convention. Every checked exclusive
 * acquire records the number (the task's address is reused as soon as it ends), so it
 * is read here with two direct calls: Swift's withUnsafeCurrentTask costs a closure and
 * reference counting, several times a lock pair.
 */
extern void *swift_task_getCurrent(void) __attribute__((swiftcall));
extern uint64_t swift_task_getJobTaskId(void *job) __attribute__((swiftcall));

static inline uint64_t clockdep_current_task(void) {
    void *task = swift_task_getCurrent();
    return task ? (swift_task_getJobTaskId(task) | ((uint64_t)1 << 63)) : 0;
}

/*
 * The same answer without calling the runtime: the address of the calling thread's
 * current-task slot, the thread-local that swift_task_getCurrent reads, or
 * &clockdep_unknown_task_slot when it cannot be found (then callers use
 * clockdep_current_task). Found once per process from swift_task_getCurrent's machine
 * code, which must be exactly the expected general-dynamic TLS read
 * (`lea index(%rip),%rdi; call __tls_get_addr; mov off(%rax),%rax`) with the call going
 * to the dynamic linker's __tls_get_addr; then, per thread, the slot is that function's
 * answer plus `off`, checked against swift_task_getCurrent once.
 * A thread's slot never moves, so reading it is one load instead of two calls.
 */
void *const *clockdep_task_slot_for_current_thread(void);

/* What clockdep_task_slot_for_current_thread returns when the slot cannot be found: a slot
 * that always holds a non-null marker, never a task, so a lock path's one test ("no task
 * here") sends every acquire on such a thread to the runtime calls. */
extern void *const clockdep_unknown_task_slot;
static inline __attribute__((always_inline)) int clockdep_task_slot_known(void *const *slot) {
    return slot != &clockdep_unknown_task_slot;
}

/* ---- naming a report's stack frames ----------------------------------------- */

/*
 * The loaded image containing `address` (dladdr): its file (the main program's as
 * /proc/self/exe where /proc is mounted) and load base, and the nearest
 * exported symbol before it (NULL when the image exports none there: an executable's own
 * functions usually, which Lockdep then finds in the file's symbol table). Returns 0 when
 * no image contains the address.
 */
int clockdep_image_of(const void *address, const char **path, uintptr_t *base, const char **symbol,
                      uintptr_t *symbol_address);

/* The running task's number from a slot found above (0 outside any task). */
static inline __attribute__((always_inline)) uint64_t clockdep_task_from_slot(void *const *slot) {
    void *task = *slot;
    return task ? (swift_task_getJobTaskId(task) | ((uint64_t)1 << 63)) : 0;
}

/* Whether the task-context checks are on (Lockdep.checksTaskContext): one load on the lock path. */
extern uint8_t clockdep_task_checks;

static inline __attribute__((always_inline)) uint8_t clockdep_task_checks_load(void) {
    return __atomic_load_n(&clockdep_task_checks, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) void clockdep_task_checks_store(uint8_t on) {
    __atomic_store_n(&clockdep_task_checks, on, __ATOMIC_RELAXED);
}

#endif /* CLOCKDEP_THREAD_H */
