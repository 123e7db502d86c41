/* The lock baselines: the same read loop under an uncontended pthread rwlock and mutex. */
#include <pthread.h>
#if defined(__GLIBC__)
#include <sys/single_threaded.h>
#endif
#include "CReference.h"

static pthread_rwlock_t creference_rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t creference_mutex = PTHREAD_MUTEX_INITIALIZER;

uint64_t creference_rwlock_read_loop(void **slot, uint64_t iterations) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        pthread_rwlock_rdlock(&creference_rwlock);
        struct creference_node *p = __atomic_load_n(slot, __ATOMIC_RELAXED);
        if (p)
            sum += (uint64_t)p->value;
        pthread_rwlock_unlock(&creference_rwlock);
    }
    return sum;
}

uint64_t creference_mutex_read_loop(void **slot, uint64_t iterations) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        pthread_mutex_lock(&creference_mutex);
        struct creference_node *p = __atomic_load_n(slot, __ATOMIC_RELAXED);
        if (p)
            sum += (uint64_t)p->value;
        pthread_mutex_unlock(&creference_mutex);
    }
    return sum;
}

bool creference_process_is_single_threaded(void) {
#if defined(__GLIBC__)
    return __libc_single_threaded != 0;
#else
    return false;   /* no such shortcut known outside glibc: every run counts as threaded */
#endif
}
