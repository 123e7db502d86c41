/*
 * CURCUBP: liburcu's bp flavor (bulletproof readers that register themselves) for Swift.
 *
 * `_LGPL_SOURCE` must be defined in this header (see CURCUMemb.h). What all flavors
 * share is declared once, in CHeaders/Shared/curcu_flavor.h.inc; this file holds
 * bp's read side.
 */
#ifndef CURCU_BP_H
#define CURCU_BP_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <urcu/urcu-bp.h>

#define CURCU_FN(name) curcu_bp_##name
#define CURCU_URCU(name) urcu_bp_##name
#define CURCU_SCOPES_ARE_SECTIONS 1
#define CURCU_SECTIONS_ARE_LOCKS 1
#include "../../Shared/curcu_flavor.h.inc"

/* bp ("bulletproof") readers need no registration call: liburcu reclaims their slot
 * when the thread exits. The shim still enters a thread in its own reader registry
 * on its first read lock (the same test liburcu's read lock makes first), so that
 * bp readers are counted and named by the stall detector like the other flavors'. */
CURCU_INLINE bool curcu_bp_is_registered(void) { return URCU_TLS(urcu_bp_reader) != NULL; }

CURCU_INLINE void curcu_bp_read_lock(void) {
    if (__builtin_expect(URCU_TLS(urcu_bp_reader) == NULL, 0))
        curcu_bp_register_thread_auto();
    urcu_bp_read_lock();
}
CURCU_INLINE void curcu_bp_read_unlock(void) { urcu_bp_read_unlock(); }
CURCU_INLINE bool curcu_bp_in_read_section(void) { return urcu_bp_read_ongoing() != 0; }

/* Whether the kernel's membarrier syscall backs the bp read side. */
CURCU_INLINE bool curcu_bp_has_sys_membarrier(void) { return urcu_bp_has_sys_membarrier != 0; }

#undef CURCU_FN
#undef CURCU_URCU
#undef CURCU_SCOPES_ARE_SECTIONS
#undef CURCU_SECTIONS_ARE_LOCKS

#endif /* CURCU_BP_H */
