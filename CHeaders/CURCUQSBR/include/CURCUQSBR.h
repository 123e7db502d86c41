/*
 * CURCUQSBR: liburcu's qsbr flavor (quiescent-state-based readers) for Swift.
 *
 * `_LGPL_SOURCE` must be defined in this header (see CURCUMemb.h). What all flavors
 * share is declared once, in CHeaders/Shared/curcu_flavor.h.inc; this file holds
 * qsbr's read side, quiescent states and online/offline.
 */
#ifndef CURCU_QSBR_H
#define CURCU_QSBR_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <urcu/urcu-qsbr.h>

#define CURCU_FN(name) curcu_qsbr_##name
#define CURCU_URCU(name) urcu_qsbr_##name
#define CURCU_REGISTERS_ITSELF 0
#define CURCU_USES_MEMBARRIER 0
#define CURCU_SECTIONS_ARE_LOCKS 0
#define CURCU_SCOPES_ARE_SECTIONS 1
#include "../../Shared/curcu_flavor.h.inc"

/* liburcu's qsbr "read ongoing" means "online": QSBR has no read-side state. */
CURCU_INLINE bool curcu_qsbr_is_online(void) { return urcu_qsbr_read_ongoing() != 0; }

/* The nesting depth of the calling thread's sections, counted in every build, so that
 * going offline, a quiescent state or unregistering inside a section can be refused. */
extern __thread unsigned curcu_qsbr_depth;
CURCU_INLINE unsigned curcu_qsbr_read_depth(void) { return curcu_qsbr_depth; }
CURCU_INLINE bool curcu_qsbr_in_read_section(void) { return curcu_qsbr_depth > 0; }

/*
 * A section, generic or in a reader scope. A thread inside a section is always online
 * (going offline, a quiescent state and unregistering are refused there), so "offline"
 * implies "outermost": one thread-local test decides whether the section must bring
 * the thread online (an unregistered one registers, which brings it online), and the
 * depth is counted after it. Returns whether it did; the unlock then goes offline.
 * In a reader scope the thread is online (unless the section runs inside `offline`),
 * and the section costs the depth count: liburcu's real QSBR read side is empty.
 */
CURCU_INLINE bool curcu_qsbr_section_read_lock(void) {
    /* No branch hint: laid out either way, neither path pays a jump (the hot loops
     * are in a scope, online; generic sections on an offline thread, offline). */
    bool brought_online = !curcu_qsbr_is_online();
    if (brought_online) {
        if (__builtin_expect(URCU_TLS(urcu_qsbr_reader).registered, 1))
            urcu_qsbr_thread_online();
        else
            curcu_qsbr_register_thread_auto();
    }
    curcu_qsbr_depth++;
    urcu_qsbr_read_lock();
    return brought_online;
}

CURCU_INLINE void curcu_qsbr_section_read_unlock(bool brought_online) {
    urcu_qsbr_read_unlock();
    curcu_qsbr_depth--;
    if (brought_online)
        urcu_qsbr_thread_offline();
}

/* Quiescent states: the reader announces it holds no RCU reference. */
CURCU_INLINE void curcu_qsbr_quiescent_state(void) { urcu_qsbr_quiescent_state(); }
CURCU_INLINE void curcu_qsbr_thread_offline(void) { urcu_qsbr_thread_offline(); }
CURCU_INLINE void curcu_qsbr_thread_online(void) { urcu_qsbr_thread_online(); }

#include "../../Shared/curcu_flavor_end.h.inc"

#endif /* CURCU_QSBR_H */
