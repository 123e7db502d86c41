/* The mb flavor's out-of-line half: CHeaders/Shared/curcu_flavor_impl.inc with mb's parameters. */
#define _GNU_SOURCE 1   /* pthread_getname_np */
#include "CURCUMB.h"

#define CURCU_FN(name) curcu_mb_##name
#define CURCU_URCU(name) urcu_mb_##name
#define CURCU_NAME "mb"
#define CURCU_IS_QSBR 0
#define CURCU_REGISTERS_ITSELF 0
#define CURCU_READER_CTR() (&URCU_TLS(urcu_mb_reader).ctr)
#define CURCU_CTR_BLOCKS_GP(ctr) (((ctr) & URCU_GP_CTR_NEST_MASK) != 0)

#include "../Shared/curcu_flavor_impl.inc"
