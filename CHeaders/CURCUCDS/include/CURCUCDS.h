/*
 * CURCUCDS: liburcu's concurrent data structures (urcu-cds) for Swift.
 *
 * The containers are flavor-independent: each takes the flavor's
 * `struct rcu_flavor_struct` (urcu_memb_flavor, urcu_qsbr_flavor, ...) at
 * creation, which this header declares without including a flavor header
 * (one flavor header per C module, see CURCUMemb.h).
 */
#ifndef CURCU_CDS_H
#define CURCU_CDS_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <urcu/flavor.h>
#include <urcu/wfcqueue.h>
#include <urcu/rculfhash.h>

#define CURCU_CDS_INLINE static inline __attribute__((always_inline))

extern const struct rcu_flavor_struct urcu_memb_flavor;
extern const struct rcu_flavor_struct urcu_qsbr_flavor;
extern const struct rcu_flavor_struct urcu_bp_flavor;
extern const struct rcu_flavor_struct urcu_mb_flavor;

CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_memb(void) { return &urcu_memb_flavor; }
CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_qsbr(void) { return &urcu_qsbr_flavor; }
CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_bp(void) { return &urcu_bp_flavor; }
CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_mb(void) { return &urcu_mb_flavor; }

/* ---- wait-free concurrent queue (wfcqueue) --------------------------------- */

CURCU_CDS_INLINE void curcu_wfcq_init(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail) {
    cds_wfcq_init(head, tail);
}
CURCU_CDS_INLINE void curcu_wfcq_node_init(struct cds_wfcq_node *node) { cds_wfcq_node_init(node); }
CURCU_CDS_INLINE bool curcu_wfcq_enqueue(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail,
                                         struct cds_wfcq_node *node) {
    return cds_wfcq_enqueue(head, tail, node);
}
CURCU_CDS_INLINE bool curcu_wfcq_empty(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail) {
    return cds_wfcq_empty(head, tail);
}

#endif /* CURCU_CDS_H */
