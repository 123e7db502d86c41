/*
 * CLockdepThread: the calling thread's Lockdep state, in a C thread-local.
 *
 * Swift has no thread-local storage of its own that is cheaper than a
 * pthread_getspecific call; a C `__thread` variable read through an inline
 * function compiles to one %fs-relative load. Lockdep's checked fast path
 * reads it on every acquire and release.
 */
#ifndef CLOCKDEP_THREAD_H
#define CLOCKDEP_THREAD_H

extern __thread void *clockdep_current_thread_state;

static inline __attribute__((always_inline)) void *clockdep_thread_state(void) {
    return clockdep_current_thread_state;
}

static inline __attribute__((always_inline)) void clockdep_set_thread_state(void *state) {
    clockdep_current_thread_state = state;
}

#endif /* CLOCKDEP_THREAD_H */
