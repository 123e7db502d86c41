/*
 * CURCUMemb: liburcu's memb flavor (membarrier-based readers) for Swift.
 *
 * Swift cannot import liburcu's function-like macros nor the `_LGPL_SOURCE`
 * name aliases, so every fast path is re-exposed as an always-inline function.
 * `_LGPL_SOURCE` must be defined in this header (a cSettings define does not
 * reach Swift's view of it): without it the read side silently calls the
 * exported functions at ten times the cost. What all flavors share is declared
 * once, in CHeaders/Shared/curcu_flavor.h.inc; this file holds memb's read side.
 */
#ifndef CURCU_MEMB_H
#define CURCU_MEMB_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <urcu/urcu-memb.h>

#define CURCU_FN(name) curcu_memb_##name
#define CURCU_URCU(name) urcu_memb_##name
#define CURCU_REGISTERS_ITSELF 0
#define CURCU_USES_MEMBARRIER 1
#define CURCU_SECTIONS_ARE_LOCKS 1
#define CURCU_SCOPES_ARE_SECTIONS 0
#include "../../Shared/curcu_flavor.h.inc"

/*
 * A reader scope's sections. `scope` is taken when the scope opens, on a registered
 * thread (curcu_memb_reader_state()): the address of that thread's liburcu reader
 * state when the kernel's membarrier backs the read side, NULL when it does not.
 * liburcu fixes that choice at init, before any registration, so a non-NULL scope
 * proves for the whole process that a reader's barriers are compiler-only.
 *
 * Lock: on the scope's thread, liburcu's counter protocol with compiler barriers;
 * anywhere else (a closure run on another thread, which Dispatch allows), and
 * whenever scope is NULL, liburcu's checked path, which registers the running thread.
 * Unlock: the same protocol on the running thread's own state, valid on any thread
 * once scope is non-NULL; with liburcu's full fences when it is NULL. Either way the
 * section is counted in the running thread's state, which only that thread writes.
 */
CURCU_INLINE void *curcu_memb_reader_state(void) {
    /* Read after the registration that ran liburcu's init, so the flag is final. */
    return urcu_memb_has_sys_membarrier ? (void *)&URCU_TLS(urcu_memb_reader) : NULL;
}

/* Entry with sys_membarrier on: the outermost entry copies the grace-period counter
 * (its phase, nest count 1), a nested one adds 1. Selected, not branched: reading
 * the global counter when nested is harmless, and the loop is branch-bound. */
CURCU_INLINE void curcu_memb_scope_fast_read_lock(void) {
    unsigned long *ctr = &URCU_TLS(urcu_memb_reader).ctr;
    cmm_barrier();
    unsigned long nest = __atomic_load_n(ctr, __ATOMIC_RELAXED);
    unsigned long gp = __atomic_load_n(&urcu_memb_gp.ctr, __ATOMIC_RELAXED);
    __atomic_store_n(ctr, (nest & URCU_GP_CTR_NEST_MASK) ? nest + URCU_GP_COUNT : gp, __ATOMIC_RELAXED);
    /* The writer's membarrier() orders the store before the section's loads. */
    cmm_barrier();
}

/* liburcu's exit protocol; `fenced` (a constant at every call) picks full fences for
 * a process without sys_membarrier. Only the outermost exit may wake a waiting grace
 * period; testing the futex first keeps the common path to one branch. */
CURCU_INLINE void curcu_memb_read_unlock_protocol(bool fenced) {
    unsigned long *ctr = &URCU_TLS(urcu_memb_reader).ctr;
    if (fenced) cmm_smp_mb(); else cmm_barrier();
    unsigned long nest = __atomic_load_n(ctr, __ATOMIC_RELAXED);
    __atomic_store_n(ctr, nest - URCU_GP_COUNT, __ATOMIC_RELAXED);
    if (fenced) cmm_smp_mb(); else cmm_barrier();
    if (__builtin_expect(__atomic_load_n(&urcu_memb_gp.futex, __ATOMIC_RELAXED) == -1, 0)
        && (nest & URCU_GP_CTR_NEST_MASK) == URCU_GP_COUNT)
        urcu_common_wake_up_gp(&urcu_memb_gp);
}

CURCU_INLINE void curcu_memb_scope_read_unlock(const void *scope, bool brought_online) {
    (void)brought_online;
    /* NULL: liburcu's full-fence unlock, written here because clang keeps liburcu's
     * static inline out of line on a cold path. */
    if (__builtin_expect(scope == NULL, 0))
        curcu_memb_read_unlock_protocol(true);
    else
        curcu_memb_read_unlock_protocol(false);
}

#include "../../Shared/curcu_flavor_end.h.inc"

#endif /* CURCU_MEMB_H */
