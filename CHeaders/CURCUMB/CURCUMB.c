/* pthread_getname_np */
#define _GNU_SOURCE 1
#include "CURCUMB.h"

#define CURCU_FN(name) curcu_mb_##name
#define CURCU_NAME "mb"
#define CURCU_HAS_REGISTRATION 1
#define CURCU_IS_QSBR 0
#define CURCU_REGISTER() urcu_mb_register_thread()
#define CURCU_UNREGISTER() urcu_mb_unregister_thread()
#define CURCU_IS_REGISTERED() (URCU_TLS(urcu_mb_reader).registered)
#define CURCU_READER_CTR() (&URCU_TLS(urcu_mb_reader).ctr)
#define CURCU_CTR_BLOCKS_GP(ctr) (((ctr) & URCU_GP_CTR_NEST_MASK) != 0)
#define CURCU_CALL_RCU urcu_mb_call_rcu
#define CURCU_DEFER_RCU urcu_mb_defer_rcu
#define CURCU_DEFER_REGISTER urcu_mb_defer_register_thread
#define CURCU_DEFER_UNREGISTER urcu_mb_defer_unregister_thread
#define CURCU_DEFER_BARRIER urcu_mb_defer_barrier
#define CURCU_BEFORE_FORK() urcu_mb_call_rcu_before_fork()
#define CURCU_AFTER_FORK_PARENT() urcu_mb_call_rcu_after_fork_parent()
#define CURCU_AFTER_FORK_CHILD() urcu_mb_call_rcu_after_fork_child()

#include "../Shared/curcu_flavor_impl.inc"
