#include "CLockdepFork.h"
#include "CLockdepThread.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CLOCKDEP_FORK_HOOKS 32

struct clockdep_fork_triple {
    clockdep_fork_hook prepare, parent, child;
    int ready;                       /* published last, with release ordering */
};

static struct clockdep_fork_triple clockdep_fork_hooks[CLOCKDEP_FORK_HOOKS];
static int clockdep_fork_reserved;
/* The triples whose prepare ran at this fork; glibc runs all atfork handlers of one
 * fork under its atfork lock, so one fork at a time writes and reads it. */
static uint32_t clockdep_fork_prepared;

static int clockdep_fork_count(void) {
    int reserved = __atomic_load_n(&clockdep_fork_reserved, __ATOMIC_ACQUIRE);
    return reserved < CLOCKDEP_FORK_HOOKS ? reserved : CLOCKDEP_FORK_HOOKS;
}

/* One-time initializers in progress (clockdep_fork_initializer_begin). */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int inside;
    int forking;
} clockdep_fork_initializers = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
static __thread int clockdep_fork_initializer_depth;
/* Set on the forking thread from its first prepare step to its last parent or child hook:
 * a bracket it opens meanwhile (a hook's first use of a value) must not wait for itself. */
static __thread int clockdep_fork_forking_thread;

void *clockdep_fork_once_values[CLOCKDEP_ONCE_SLOTS];

int clockdep_fork_is_preparing(void) {
    return __atomic_load_n(&clockdep_fork_initializers.forking, __ATOMIC_ACQUIRE);
}

void clockdep_fork_initializer_begin(void) {
    if (clockdep_fork_initializer_depth++ > 0 || clockdep_fork_forking_thread)
        return;
    pthread_mutex_lock(&clockdep_fork_initializers.lock);
    while (clockdep_fork_initializers.forking)
        pthread_cond_wait(&clockdep_fork_initializers.changed, &clockdep_fork_initializers.lock);
    clockdep_fork_initializers.inside++;
    pthread_mutex_unlock(&clockdep_fork_initializers.lock);
}

void clockdep_fork_initializer_end(void) {
    if (--clockdep_fork_initializer_depth > 0 || clockdep_fork_forking_thread)
        return;
    pthread_mutex_lock(&clockdep_fork_initializers.lock);
    if (--clockdep_fork_initializers.inside == 0 && clockdep_fork_initializers.forking)
        pthread_cond_broadcast(&clockdep_fork_initializers.changed);
    pthread_mutex_unlock(&clockdep_fork_initializers.lock);
}

static void clockdep_fork_prepare_initializers(void) {
    pthread_mutex_lock(&clockdep_fork_initializers.lock);
    __atomic_store_n(&clockdep_fork_initializers.forking, 1, __ATOMIC_RELEASE);
    clockdep_fork_forking_thread = 1;
    int own = clockdep_fork_initializer_depth > 0 ? 1 : 0;
    while (clockdep_fork_initializers.inside > own)
        pthread_cond_wait(&clockdep_fork_initializers.changed, &clockdep_fork_initializers.lock);
    pthread_mutex_unlock(&clockdep_fork_initializers.lock);
}

static void clockdep_fork_parent_initializers(void) {
    clockdep_fork_forking_thread = 0;
    pthread_mutex_lock(&clockdep_fork_initializers.lock);
    __atomic_store_n(&clockdep_fork_initializers.forking, 0, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&clockdep_fork_initializers.changed);
    pthread_mutex_unlock(&clockdep_fork_initializers.lock);
}

static void clockdep_fork_child_initializers(void) {
    /* Only the forking thread exists here, inside at most its own initializer. */
    pthread_mutex_init(&clockdep_fork_initializers.lock, NULL);
    pthread_cond_init(&clockdep_fork_initializers.changed, NULL);
    clockdep_fork_initializers.inside = clockdep_fork_initializer_depth > 0 ? 1 : 0;
    clockdep_fork_initializers.forking = 0;
    clockdep_fork_forking_thread = 0;
}

static void clockdep_fork_prepare(void) {
    clockdep_fork_prepare_initializers();
    uint32_t prepared = 0;
    for (int i = clockdep_fork_count() - 1; i >= 0; i--) {
        if (!__atomic_load_n(&clockdep_fork_hooks[i].ready, __ATOMIC_ACQUIRE))
            continue;                /* being registered: not part of this fork */
        prepared |= UINT32_C(1) << i;
        if (clockdep_fork_hooks[i].prepare)
            clockdep_fork_hooks[i].prepare();
    }
    clockdep_fork_prepared = prepared;
}

static void clockdep_fork_parent(void) {
    for (int i = 0; i < CLOCKDEP_FORK_HOOKS; i++)
        if ((clockdep_fork_prepared >> i & 1) && clockdep_fork_hooks[i].parent)
            clockdep_fork_hooks[i].parent();
    clockdep_fork_parent_initializers();
}

unsigned long clockdep_fork_generation;
uintptr_t clockdep_fork_thread_identity;

static void clockdep_fork_child(void) {
    __atomic_store_n(&clockdep_fork_generation, clockdep_fork_generation + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&clockdep_fork_thread_identity, clockdep_thread_identity(), __ATOMIC_RELAXED);
    for (int i = 0; i < CLOCKDEP_FORK_HOOKS; i++)
        if ((clockdep_fork_prepared >> i & 1) && clockdep_fork_hooks[i].child)
            clockdep_fork_hooks[i].child();
    clockdep_fork_child_initializers();
}

static pthread_once_t clockdep_fork_once = PTHREAD_ONCE_INIT;

static void clockdep_fork_install_once(void) {
    int status = pthread_atfork(clockdep_fork_prepare, clockdep_fork_parent, clockdep_fork_child);
    if (status != 0) {
        fprintf(stderr, "swift-rcu: pthread_atfork failed (%d): a child of fork() could hang on a package lock\n", status);
        abort();
    }
}

void clockdep_fork_install(void) {
    pthread_once(&clockdep_fork_once, clockdep_fork_install_once);
}

/* Before main, so before any shim installs liburcu's hooks (each also asks first). */
__attribute__((constructor)) static void clockdep_fork_install_early(void) {
    clockdep_fork_install();
}

void clockdep_fork_register(clockdep_fork_hook prepare, clockdep_fork_hook parent, clockdep_fork_hook child) {
    clockdep_fork_install();
    int index = __atomic_fetch_add(&clockdep_fork_reserved, 1, __ATOMIC_RELAXED);
    if (index >= CLOCKDEP_FORK_HOOKS) {
        fprintf(stderr, "swift-rcu: more than %d fork handler triples registered\n", CLOCKDEP_FORK_HOOKS);
        abort();
    }
    clockdep_fork_hooks[index].prepare = prepare;
    clockdep_fork_hooks[index].parent = parent;
    clockdep_fork_hooks[index].child = child;
    __atomic_store_n(&clockdep_fork_hooks[index].ready, 1, __ATOMIC_RELEASE);
}
