/* The bp flavor's out-of-line half: CHeaders/Shared/curcu_flavor_impl.inc with bp's parameters. */
#define _GNU_SOURCE 1   /* pthread_getname_np */
#include "CURCUBP.h"

#define CURCU_FN(name) curcu_bp_##name
#define CURCU_URCU(name) urcu_bp_##name
#define CURCU_NAME "bp"
#define CURCU_IS_QSBR 0
#define CURCU_REGISTERS_ITSELF 1
#define CURCU_READER_CTR() (&URCU_TLS(urcu_bp_reader)->ctr)
#define CURCU_CTR_BLOCKS_GP(ctr) (((ctr) & URCU_BP_GP_CTR_NEST_MASK) != 0)

#include "../Shared/curcu_flavor_impl.inc"
