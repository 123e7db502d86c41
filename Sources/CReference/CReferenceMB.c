/* The mb flavor's C read loops: liburcu's own inline fast path (_LGPL_SOURCE). */
#include <CURCUMB.h>

#define CREF_FN(name) creference_mb_##name
#define CREF_URCU(name) urcu_mb_##name
#define CREF_SHIM(name) curcu_mb_##name
#define CREF_ENTER() curcu_mb_register_thread()   /* idempotent, out of line, outside the loop */
#define CREF_LEAVE() ((void)0)
#define CREF_CHECKED 1
#include "read_loop_template.h"
