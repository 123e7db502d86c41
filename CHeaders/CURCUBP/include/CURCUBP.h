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

/* bp ("bulletproof") readers need no registration call: liburcu reclaims their slot
 * when the thread exits. The shim still enters a thread in its own reader registry
 * on its first read lock (the same test liburcu's read lock makes first), so that
 * bp readers are counted and named by the stall detector like the other flavors'. */
#define CURCU_FN(name) curcu_bp_##name
#define CURCU_URCU(name) urcu_bp_##name
#define CURCU_REGISTERS_ITSELF 1
#define CURCU_USES_MEMBARRIER 1
#define CURCU_SECTIONS_ARE_LOCKS 1
#define CURCU_SCOPES_ARE_SECTIONS 1
#include "../../Shared/curcu_flavor.h.inc"

#include "../../Shared/curcu_flavor_end.h.inc"

#endif /* CURCU_BP_H */
