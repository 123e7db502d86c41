/* pthread_getname_np */
#define _GNU_SOURCE 1
#include "CURCUCommon.h"

__thread void *curcu_current_wait_slot;

int curcu_thread_name(pthread_t thread, char *buffer, size_t length) {
    return pthread_getname_np(thread, buffer, length);
}

int curcu_set_current_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
