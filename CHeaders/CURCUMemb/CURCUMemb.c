/* pthread_getname_np */
#define _GNU_SOURCE 1
#include "CURCUMemb.h"

#define CURCU_FN(name) curcu_memb_##name
#define CURCU_NAME "memb"
#define CURCU_HAS_REGISTRATION 1
#define CURCU_IS_QSBR 0
#define CURCU_REGISTER() urcu_memb_register_thread()
#define CURCU_UNREGISTER() urcu_memb_unregister_thread()
#define CURCU_IS_REGISTERED() (URCU_TLS(urcu_memb_reader).registered)
#define CURCU_READER_CTR() (&URCU_TLS(urcu_memb_reader).ctr)
#define CURCU_CTR_BLOCKS_GP(ctr) (((ctr) & URCU_GP_CTR_NEST_MASK) != 0)
#define CURCU_CALL_RCU urcu_memb_call_rcu
#define CURCU_DEFER_RCU urcu_memb_defer_rcu
#define CURCU_DEFER_REGISTER urcu_memb_defer_register_thread
#define CURCU_DEFER_UNREGISTER urcu_memb_defer_unregister_thread
#define CURCU_DEFER_BARRIER urcu_memb_defer_barrier
#define CURCU_BEFORE_FORK() urcu_memb_call_rcu_before_fork()
#define CURCU_AFTER_FORK_PARENT() urcu_memb_call_rcu_after_fork_parent()
#define CURCU_AFTER_FORK_CHILD() urcu_memb_call_rcu_after_fork_child()

#include "../Shared/curcu_flavor_impl.inc"

__thread void *curcu_current_wait_slot;

int curcu_current_thread_name(char *buffer, size_t length) {
    return pthread_getname_np(pthread_self(), buffer, length);
}

int curcu_thread_name(pthread_t thread, char *buffer, size_t length) {
    return pthread_getname_np(thread, buffer, length);
}

int curcu_set_current_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
