/* The qsbr flavor's out-of-line half: CHeaders/Shared/curcu_flavor_impl.inc with qsbr's parameters. */
#define _GNU_SOURCE 1   /* pthread_getname_np */
#include "CURCUQSBR.h"

__thread unsigned curcu_qsbr_depth;

#define CURCU_FN(name) curcu_qsbr_##name
#define CURCU_URCU(name) urcu_qsbr_##name
#define CURCU_NAME "qsbr"
#define CURCU_IS_QSBR 1
#define CURCU_REGISTERS_ITSELF 0
#define CURCU_READER_CTR() (&URCU_TLS(urcu_qsbr_reader).ctr)
/* Online (non-zero) and not yet quiescent in the current grace period. */
#define CURCU_CTR_BLOCKS_GP(ctr) ((ctr) != 0 && (ctr) != __atomic_load_n(&urcu_qsbr_gp.ctr, __ATOMIC_RELAXED))

#include "../Shared/curcu_flavor_impl.inc"
