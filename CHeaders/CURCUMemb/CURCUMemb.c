/* The memb flavor's out-of-line half: CHeaders/Shared/curcu_flavor_impl.inc with memb's parameters. */
#define _GNU_SOURCE 1   /* pthread_getname_np */
#include "CURCUMemb.h"

#define CURCU_FN(name) curcu_memb_##name
#define CURCU_URCU(name) urcu_memb_##name
#define CURCU_NAME "memb"
#define CURCU_IS_QSBR 0
#define CURCU_REGISTERS_ITSELF 0
#define CURCU_READER_CTR() (&URCU_TLS(urcu_memb_reader).ctr)
#define CURCU_CTR_BLOCKS_GP(ctr) (((ctr) & URCU_GP_CTR_NEST_MASK) != 0)

#include "../Shared/curcu_flavor_impl.inc"
