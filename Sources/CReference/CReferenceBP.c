/* The bp flavor's C read loop: liburcu's own inline fast path (_LGPL_SOURCE). bp registers
 * the thread in its read lock (liburcu's own check, in the loop). */
#include <CURCUBP.h>

#define CREF_FN(name) creference_bp_##name
#define CREF_URCU(name) urcu_bp_##name
#define CREF_SHIM(name) curcu_bp_##name
#define CREF_ENTER() ((void)0)
#define CREF_LEAVE() ((void)0)
#define CREF_CHECKED 0
#include "read_loop_template.h"
