/*
 * CURCUMB: liburcu's mb flavor (readers with full memory barriers) for Swift.
 *
 * `_LGPL_SOURCE` must be defined in this header (see CURCUMemb.h). What all flavors
 * share is declared once, in CHeaders/Shared/curcu_flavor.h.inc; this file holds
 * mb's read side.
 */
#ifndef CURCU_MB_H
#define CURCU_MB_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <urcu/urcu-mb.h>

#define CURCU_FN(name) curcu_mb_##name
#define CURCU_URCU(name) urcu_mb_##name
#define CURCU_REGISTERS_ITSELF 0
#define CURCU_USES_MEMBARRIER 0
#define CURCU_SECTIONS_ARE_LOCKS 1
#define CURCU_SCOPES_ARE_SECTIONS 0
#include "../../Shared/curcu_flavor.h.inc"

/*
 * A reader scope's read lock: `scope` is the address of the scope thread's liburcu
 * reader state (curcu_mb_reader_state()), registered for the whole scope. On that
 * thread this is liburcu's bare fast path; the comparison is loop-invariant, so a
 * hot loop pays nothing for it. Run elsewhere (a closure executed on another
 * thread), it takes the checked path, which registers that thread first.
 */
CURCU_INLINE void *curcu_mb_reader_state(void) { return &URCU_TLS(urcu_mb_reader); }
CURCU_INLINE bool curcu_mb_scope_read_lock(const void *scope) {
    if (__builtin_expect(scope != (const void *)&URCU_TLS(urcu_mb_reader), 0))
        curcu_mb_read_lock();
    else
        urcu_mb_read_lock();
    return false;
}
CURCU_INLINE void curcu_mb_scope_read_unlock(const void *scope, bool brought_online) {
    (void)scope;
    (void)brought_online;
    urcu_mb_read_unlock();
}

#undef CURCU_FN
#undef CURCU_URCU
#undef CURCU_REGISTERS_ITSELF
#undef CURCU_USES_MEMBARRIER
#undef CURCU_SECTIONS_ARE_LOCKS
#undef CURCU_SCOPES_ARE_SECTIONS

#endif /* CURCU_MB_H */
