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

/* A reader scope's sections: the scope records the address of its thread's liburcu
 * reader state; on that thread, liburcu's bare fast path. */
CURCU_INLINE void *curcu_mb_reader_state(void) { return &URCU_TLS(urcu_mb_reader); }
CURCU_INLINE void curcu_mb_scope_fast_read_lock(void) { urcu_mb_read_lock(); }
CURCU_INLINE void curcu_mb_scope_read_unlock(const void *scope, bool brought_online) {
    (void)scope;
    (void)brought_online;
    urcu_mb_read_unlock();
}

#include "../../Shared/curcu_flavor_end.h.inc"

#endif /* CURCU_MB_H */
