/* pthread_getname_np */
#define _GNU_SOURCE 1
#include "CURCUQSBR.h"

__thread unsigned curcu_qsbr_depth;
__thread bool curcu_qsbr_section_onlined;

#define CURCU_FN(name) curcu_qsbr_##name
#define CURCU_NAME "qsbr"
#define CURCU_HAS_REGISTRATION 1
#define CURCU_IS_QSBR 1
#define CURCU_REGISTER() urcu_qsbr_register_thread()
#define CURCU_UNREGISTER() urcu_qsbr_unregister_thread()
#define CURCU_IS_REGISTERED() (URCU_TLS(urcu_qsbr_reader).registered)
#define CURCU_THREAD_ONLINE() urcu_qsbr_thread_online()
#define CURCU_THREAD_OFFLINE() urcu_qsbr_thread_offline()
#define CURCU_READER_CTR() (&URCU_TLS(urcu_qsbr_reader).ctr)
/* Online (non-zero) and not yet quiescent in the current grace period. */
#define CURCU_CTR_BLOCKS_GP(ctr) ((ctr) != 0 && (ctr) != __atomic_load_n(&urcu_qsbr_gp.ctr, __ATOMIC_RELAXED))
#define CURCU_CALL_RCU urcu_qsbr_call_rcu
#define CURCU_DEFER_RCU urcu_qsbr_defer_rcu
#define CURCU_DEFER_REGISTER urcu_qsbr_defer_register_thread
#define CURCU_DEFER_UNREGISTER urcu_qsbr_defer_unregister_thread
#define CURCU_DEFER_BARRIER urcu_qsbr_defer_barrier
#define CURCU_BEFORE_FORK() urcu_qsbr_call_rcu_before_fork()
#define CURCU_AFTER_FORK_PARENT() urcu_qsbr_call_rcu_after_fork_parent()
#define CURCU_AFTER_FORK_CHILD() urcu_qsbr_call_rcu_after_fork_child()

#include "../Shared/curcu_flavor_impl.inc"

void curcu_qsbr_enter_extended(void) {
    if (!URCU_TLS(urcu_qsbr_reader).registered)
        curcu_qsbr_register_thread_auto();
    else
        urcu_qsbr_thread_online();
    curcu_qsbr_section_onlined = true;
}

void curcu_qsbr_leave_extended(void) {
    curcu_qsbr_section_onlined = false;
    urcu_qsbr_thread_offline();
}
