/*
 * The `urcu` readers' per-thread read count, as liburcu's test programs keep it:
 * `URCU_TLS(nr_reads)++`, a thread-local of the executable incremented in place.
 *
 * The access is the programs' own instruction, `incq %fs:OFFSET` (the local-exec
 * model: a fixed offset from the thread pointer, no base register). That matters:
 * some CPUs (AMD Zen 4 among them) forward a store to the next load of the same
 * address at once when the address has a base register, and through the store
 * queue when it has none, so a count kept in a heap object addressed through a
 * register runs a read loop up to 1.3 ns a read faster than test_urcu's.
 *
 * Relaxed atomics: the monitor thread reads a running count for the progress line.
 * They compile to the same single increment.
 */
#ifndef CREFERENCE_READ_COUNT_H
#define CREFERENCE_READ_COUNT_H

extern __thread unsigned long creference_urcu_reads __attribute__((tls_model("local-exec")));

/* Adds 1 to the calling thread's count and returns it. */
static inline __attribute__((always_inline)) unsigned long creference_urcu_count_read(void) {
    unsigned long count = __atomic_load_n(&creference_urcu_reads, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&creference_urcu_reads, count, __ATOMIC_RELAXED);
    return count;
}

/* The calling thread's count, and its address, which another thread may read
 * (creference_urcu_reads_at) for as long as the calling thread runs. */
static inline unsigned long creference_urcu_reads_now(void) {
    return __atomic_load_n(&creference_urcu_reads, __ATOMIC_RELAXED);
}

static inline unsigned long *creference_urcu_reads_address(void) {
    return &creference_urcu_reads;
}

static inline unsigned long creference_urcu_reads_at(const unsigned long *count) {
    return __atomic_load_n(count, __ATOMIC_RELAXED);
}

/* Sets the calling thread's count to 0 (a reader thread's loop starts from 0). */
static inline void creference_urcu_reads_reset(void) {
    __atomic_store_n(&creference_urcu_reads, 0, __ATOMIC_RELAXED);
}

#endif
