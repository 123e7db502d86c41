/* pthread_getname_np */
#define _GNU_SOURCE 1
#include "CURCUCommon.h"

__thread void *curcu_current_wait_slot;
__thread int curcu_any_callback_depth;

void (*curcu_enqueue_test_hook)(void);

void curcu_set_enqueue_test_hook(void (*hook)(void)) {
    __atomic_store_n(&curcu_enqueue_test_hook, hook, __ATOMIC_RELEASE);
}

int curcu_thread_name(pthread_t thread, char *buffer, size_t length) {
    return pthread_getname_np(thread, buffer, length);
}

int curcu_set_current_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
