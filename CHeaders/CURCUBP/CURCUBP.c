/* pthread_getname_np */
#define _GNU_SOURCE 1
#include "CURCUBP.h"

#define CURCU_FN(name) curcu_bp_##name
#define CURCU_NAME "bp"
/* bp registers itself on the first read lock and unregisters at thread exit. */
#define CURCU_HAS_REGISTRATION 0
#define CURCU_IS_QSBR 0
#define CURCU_REGISTER() urcu_bp_register_thread()
#define CURCU_UNREGISTER() urcu_bp_unregister_thread()
#define CURCU_IS_REGISTERED() (URCU_TLS(urcu_bp_reader) != NULL)
#define CURCU_READER_CTR() (&URCU_TLS(urcu_bp_reader)->ctr)
#define CURCU_CTR_BLOCKS_GP(ctr) (((ctr) & URCU_BP_GP_CTR_NEST_MASK) != 0)
#define CURCU_CALL_RCU urcu_bp_call_rcu
#define CURCU_DEFER_RCU urcu_bp_defer_rcu
#define CURCU_DEFER_REGISTER urcu_bp_defer_register_thread
#define CURCU_DEFER_UNREGISTER urcu_bp_defer_unregister_thread
#define CURCU_DEFER_BARRIER urcu_bp_defer_barrier
/* bp's reader registry has its own fork hooks; call_rcu's wrap them. */
#define CURCU_BEFORE_FORK() (urcu_bp_call_rcu_before_fork(), urcu_bp_before_fork())
#define CURCU_AFTER_FORK_PARENT() (urcu_bp_after_fork_parent(), urcu_bp_call_rcu_after_fork_parent())
#define CURCU_AFTER_FORK_CHILD() (urcu_bp_after_fork_child(), urcu_bp_call_rcu_after_fork_child())

#include "../Shared/curcu_flavor_impl.inc"
