/*
 * The floor under any checked lock pair that keeps a held-lock stack, as `lock-cost` times it
 * beside the plain pthread pair and CheckedMutex: per pair, the least a lockdep-style
 * validator does on a chain it has validated before, and nothing more.
 *
 * Acquire: the thread's state (a thread-local), the chain key of the new top (the previous
 * entry's key mixed with the class), a probe of the thread's chain cache (the key must be
 * there: a miss is counted and fails the run), a push of {instance, key, class, acquire
 * site}. Release: the top entry must be this lock (else counted), then the pop.
 *
 * What CheckedMutex does beyond this floor: the owner word (a recursive acquire is refused
 * before it deadlocks; `isHeldByCurrentThread` is exact), the published wait (a hang report
 * names the awaited lock and its holder), the validation/statistics gate and the depth limit,
 * the sleep-in-atomic check, the interrupt state in the key, the task that took the lock,
 * and the site as file, line and function (three words where this floor stores one).
 */
#include <pthread.h>
#include <stdint.h>
#include "CReference.h"

enum { FLOOR_DEPTH = 48, FLOOR_CACHE = 1024 };

struct floor_held {
    const void *instance;
    uint64_t chain_key;
    uint64_t class_info;
    const void *site;
};

struct floor_thread {
    struct floor_held *top;
    uint64_t misses;
    uint64_t cache[FLOOR_CACHE];
    struct floor_held stack[FLOOR_DEPTH + 1]; /* stack[0]: the sentinel holding the seed */
};

/* Read through a thread-local pointer on every pair, as a validator finds its thread's state. */
static __thread struct floor_thread *floor_state;

static inline uint64_t floor_mix(uint64_t key, uint64_t element) {
    __uint128_t x = (__uint128_t)(key + element) * 0x9e3779b97f4a7c15ull;
    return ((uint64_t)(x >> 64) ^ (uint64_t)x) | 1;
}

static const char floor_site[] = "lock-cost floor";

uint64_t creference_lockdep_floor_loop(pthread_mutex_t *mutex, uint32_t class_id, uint64_t iterations) {
    struct floor_thread state = { .misses = 0 };
    state.stack[0].chain_key = 0x5eed;
    state.top = &state.stack[1];
    floor_state = &state;
    struct floor_thread *t = floor_state;
    uint64_t element = (uint64_t)class_id << 3;
    /* The chain {this class} validated once, before the loop. */
    uint64_t validated = floor_mix(t->top[-1].chain_key, element);
    t->cache[validated & (FLOOR_CACHE - 1)] = validated;

    uint64_t pairs = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        t = floor_state;
        struct floor_held *top = t->top;
        uint64_t key = floor_mix(top[-1].chain_key, element);
        if (__builtin_expect(t->cache[key & (FLOOR_CACHE - 1)] != key, 0))
            t->misses++;
        top->instance = mutex;
        top->chain_key = key;
        top->class_info = element;
        top->site = floor_site;
        t->top = top + 1;
        pthread_mutex_lock(mutex);
        pairs++;
        t = floor_state;
        top = t->top - 1;
        if (__builtin_expect(top->instance != mutex, 0))
            t->misses++;
        t->top = top;
        pthread_mutex_unlock(mutex);
    }
    uint64_t misses = t->misses;
    floor_state = NULL;
    return misses == 0 ? pairs : 0;
}

/*
 * The plain pair with CREFERENCE_PAD_INSTRUCTIONS register additions around it, in four
 * independent chains (the parallelism of ordinary straight-line code) and storing nothing:
 * half before the lock, half before the unlock, where a validator's acquire and release work
 * sits. `lock-cost` times it as a yardstick for what simple work next to the pair's atomic
 * instructions costs on this machine: CPUs differ in how much of it a locked instruction
 * hides. On x86-64 each half is one asm block, so the compiler adds no register moves (with
 * four registers taken, it may reload the mutex pointer from the stack); elsewhere an empty
 * asm after each addition keeps the compiler from folding the chains, and it may add moves.
 */
#if defined(__x86_64__)
#define PAD_8 "addq $1, %0\n\taddq $1, %1\n\taddq $1, %2\n\taddq $1, %3\n\t" \
              "addq $1, %0\n\taddq $1, %1\n\taddq $1, %2\n\taddq $1, %3\n\t"
#define PAD_HALF __asm__ volatile(PAD_8 PAD_8 PAD_8 PAD_8 : "+r"(a), "+r"(b), "+r"(c), "+r"(d));
#else
#define PAD_STEP(r) r += 1; __asm__ volatile("" : "+r"(r));
#define PAD_8 PAD_STEP(a) PAD_STEP(b) PAD_STEP(c) PAD_STEP(d) PAD_STEP(a) PAD_STEP(b) PAD_STEP(c) PAD_STEP(d)
#define PAD_HALF PAD_8 PAD_8 PAD_8 PAD_8
#endif

_Static_assert(CREFERENCE_PAD_INSTRUCTIONS == 64, "PAD_HALF twice is 64 additions");

uint64_t creference_padded_pair_loop(pthread_mutex_t *mutex, uint64_t iterations) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        PAD_HALF
        pthread_mutex_lock(mutex);
        PAD_HALF
        pthread_mutex_unlock(mutex);
    }
    /* Every chain added to once per step: the sum proves that none was dropped. */
    return (a + b + c + d) == iterations * CREFERENCE_PAD_INSTRUCTIONS ? iterations : 0;
}
