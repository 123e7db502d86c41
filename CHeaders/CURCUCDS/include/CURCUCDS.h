/*
 * CURCUCDS: liburcu's concurrent data structures (urcu-cds) for Swift.
 *
 * The containers are flavor-independent: each takes the flavor's
 * `struct rcu_flavor_struct` (urcu_memb_flavor, urcu_qsbr_flavor, ...) at
 * creation, which each flavor shim hands out (`curcu_<flavor>_cds_flavor()`):
 * one flavor header per C module, see CHeaders/Shared/curcu_flavor.h.inc.
 *
 * ThreadSanitizer: liburcu publishes nodes with inline-asm atomics that TSan
 * cannot see, so every node this shim hands to a liburcu container is
 * released (`__tsan_release(node)`) before publication and acquired after a
 * reader or consumer finds it. Under TSan the wait-free queue calls liburcu's
 * exported (uninstrumented) functions instead of the inline ones, whose plain
 * volatile accesses TSan would otherwise report as races.
 */
#ifndef CURCU_CDS_H
#define CURCU_CDS_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <urcu/flavor.h>
#include <urcu/wfcqueue.h>
#include <urcu/rculfhash.h>
#include <urcu/list.h>

/* rculfqueue's inline half needs a flavor header; the exported functions do not. */
#undef _LGPL_SOURCE
#include <urcu/rculfqueue.h>
#define _LGPL_SOURCE 1

#define CURCU_CDS_INLINE static inline __attribute__((always_inline))

/*
 * ThreadSanitizer annotations live in CURCUCDS.c: `__has_feature(thread_sanitizer)`
 * is false when Swift's Clang importer compiles this header's inline functions,
 * even in a TSan build, so every function that publishes or acquires a node is
 * out of line (each already calls into liburcu, so the extra call is noise).
 */

static inline __attribute__((noreturn)) void curcu_cds_out_of_memory(void) {
    fputs("swift-rcu: out of memory allocating a container node\n", stderr);
    abort();
}

/* ---- wait-free concurrent queue (wfcqueue) --------------------------------- */

/* A queue (head with its dequeue lock, and tail) at a stable address. */
struct curcu_wfcq {
    struct cds_wfcq_head head;
    struct cds_wfcq_tail tail;
};

/* A queue node carrying a retained Swift object. */
struct curcu_wfcq_item {
    struct cds_wfcq_node node;
    void *box;
};

struct curcu_wfcq *curcu_wfcq_new(void);
/* The queue must be empty. */
void curcu_wfcq_free(struct curcu_wfcq *q);
/* Wait-free: an exchange on the tail and a store. */
void curcu_wfcq_push(struct curcu_wfcq *q, void *box);
/* Takes the queue's dequeue lock; returns the retained object or NULL when empty. */
void *curcu_wfcq_pop(struct curcu_wfcq *q);
bool curcu_wfcq_is_empty(struct curcu_wfcq *q);
/* Moves every node of `src` to the tail of `dest` (takes src's dequeue lock). */
void curcu_wfcq_splice(struct curcu_wfcq *dest, struct curcu_wfcq *src);

/* ---- RCU lock-free queue (rculfqueue) -------------------------------------- */

struct curcu_lfq_item {
    struct cds_lfq_node_rcu node;
    void *box;
};

#include "curcu_lfq_new.h"
/* Returns false (and frees nothing) when the queue is not empty. */
bool curcu_lfq_free(struct cds_lfq_queue_rcu *q);
/* Call inside a read section. */
void curcu_lfq_push(struct cds_lfq_queue_rcu *q, void *box);
/* Call inside a read section. Returns the item (free it with curcu_lfq_item_free
 * after a grace period: concurrent dequeuers may still read it) or NULL. */
struct curcu_lfq_item *curcu_lfq_pop(struct cds_lfq_queue_rcu *q);
CURCU_CDS_INLINE void *curcu_lfq_item_box(struct curcu_lfq_item *item) { return item->box; }
CURCU_CDS_INLINE void curcu_lfq_item_free(void *item) { free(item); }

/* ---- RCU list (the kernel's list_*_rcu over struct cds_list_head) ---------- */

/*
 * Readers follow `next` with consume loads; writers (serialised by the
 * caller's lock) publish with release stores. `prev` is writer-only.
 * Written here with __atomic builtins rather than urcu/rculist.h so that
 * ThreadSanitizer sees the publication.
 */
struct curcu_list_node {
    struct cds_list_head link;
    void *owner;  /* the Swift node object (unretained) */
    void *object; /* the element when it is a class instance (unretained; the node owns it), else NULL */
};

CURCU_CDS_INLINE struct cds_list_head *curcu_list_head_new(void) {
    struct cds_list_head *head = malloc(sizeof(*head));
    if (!head)
        curcu_cds_out_of_memory();
    head->next = head;
    head->prev = head;
    return head;
}
CURCU_CDS_INLINE void curcu_list_head_free(struct cds_list_head *head) { free(head); }

CURCU_CDS_INLINE struct curcu_list_node *curcu_list_node_new(void *owner) {
    struct curcu_list_node *node = malloc(sizeof(*node));
    if (!node)
        curcu_cds_out_of_memory();
    node->link.next = NULL;
    node->link.prev = NULL;
    node->owner = owner;
    node->object = NULL;
    return node;
}
CURCU_CDS_INLINE void curcu_list_node_free(struct curcu_list_node *node) { free(node); }

CURCU_CDS_INLINE void curcu_list_insert_between(struct cds_list_head *entry, struct cds_list_head *prev,
                                                struct cds_list_head *next) {
    entry->next = next;
    entry->prev = prev;
    __atomic_store_n(&prev->next, entry, __ATOMIC_RELEASE); /* rcu_assign_pointer */
    next->prev = entry;
}
/* list_add_rcu */
CURCU_CDS_INLINE void curcu_list_add_head(struct curcu_list_node *node, struct cds_list_head *head) {
    curcu_list_insert_between(&node->link, head, __atomic_load_n(&head->next, __ATOMIC_RELAXED));
}
/* list_add_tail_rcu */
CURCU_CDS_INLINE void curcu_list_add_tail(struct curcu_list_node *node, struct cds_list_head *head) {
    curcu_list_insert_between(&node->link, head->prev, head);
}
/* list_del_rcu: `next` stays valid for readers standing on the node. */
CURCU_CDS_INLINE void curcu_list_del(struct curcu_list_node *node) {
    struct cds_list_head *prev = node->link.prev, *next = __atomic_load_n(&node->link.next, __ATOMIC_RELAXED);
    next->prev = prev;
    __atomic_store_n(&prev->next, next, __ATOMIC_RELEASE);
    node->link.prev = NULL;
}
/* list_replace_rcu */
CURCU_CDS_INLINE void curcu_list_replace(struct curcu_list_node *old, struct curcu_list_node *replacement) {
    struct cds_list_head *prev = old->link.prev, *next = __atomic_load_n(&old->link.next, __ATOMIC_RELAXED);
    replacement->link.next = next;
    replacement->link.prev = prev;
    __atomic_store_n(&prev->next, &replacement->link, __ATOMIC_RELEASE);
    next->prev = &replacement->link;
    old->link.prev = NULL;
}
/* rcu_dereference of a `next` pointer. */
CURCU_CDS_INLINE struct cds_list_head *curcu_list_next(struct cds_list_head *entry) {
    return __atomic_load_n(&entry->next, __ATOMIC_CONSUME);
}
/* The Swift owner of a link that is not the head. */
CURCU_CDS_INLINE void *curcu_list_owner(struct cds_list_head *entry) {
    return caa_container_of(entry, struct curcu_list_node, link)->owner;
}
/* The element object of a link that is not the head (NULL when elements are not class instances). */
CURCU_CDS_INLINE void *curcu_list_object(struct cds_list_head *entry) {
    return caa_container_of(entry, struct curcu_list_node, link)->object;
}

/* ---- RCU lock-free hash table (rculfhash) ---------------------------------- */

/*
 * An entry is one allocation made by Swift: this node first, then the Swift
 * key and value inline (no separate object, so a lookup follows no pointer
 * past the node). The layout after `node` is Swift's business.
 */
struct curcu_lfht_entry {
    struct cds_lfht_node node;
};

typedef int (*curcu_lfht_match_fn)(struct cds_lfht_node *node, const void *key);

CURCU_CDS_INLINE struct cds_lfht *curcu_lfht_new(unsigned long initial_buckets, const struct rcu_flavor_struct *flavor) {
    return cds_lfht_new_flavor(initial_buckets, initial_buckets, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                               flavor, NULL);
}
CURCU_CDS_INLINE int curcu_lfht_destroy(struct cds_lfht *ht) { return cds_lfht_destroy(ht, NULL); }

CURCU_CDS_INLINE void curcu_lfht_entry_init(struct curcu_lfht_entry *entry) { cds_lfht_node_init(&entry->node); }

/* The entry of a node found by a lookup or an iteration; tells TSan about its publication. */
struct curcu_lfht_entry *curcu_lfht_entry_of(struct cds_lfht_node *node);

/* All below: call inside a read section of the table's flavor. */
/* The first entry whose hash is `hash` (any key), and the next one after `iter`:
 * readers compare keys in Swift, where the comparison is specialised. */
struct curcu_lfht_entry *curcu_lfht_lookup_hash(struct cds_lfht *ht, unsigned long hash, struct cds_lfht_iter *iter);
struct curcu_lfht_entry *curcu_lfht_next_same_hash(struct cds_lfht *ht, struct cds_lfht_iter *iter);
/* Returns `entry` when added, or the entry already holding the key. */
struct curcu_lfht_entry *curcu_lfht_add_unique(struct cds_lfht *ht, unsigned long hash, curcu_lfht_match_fn match,
                                               const void *key, struct curcu_lfht_entry *entry);
/* Returns the entry replaced, or NULL when the key was absent (then `entry` was added). */
struct curcu_lfht_entry *curcu_lfht_add_replace(struct cds_lfht *ht, unsigned long hash, curcu_lfht_match_fn match,
                                                const void *key, struct curcu_lfht_entry *entry);
/* True when this call removed the entry (false: someone else did first). */
CURCU_CDS_INLINE bool curcu_lfht_del(struct cds_lfht *ht, struct curcu_lfht_entry *entry) {
    return cds_lfht_del(ht, &entry->node) == 0;
}
struct curcu_lfht_entry *curcu_lfht_first(struct cds_lfht *ht, struct cds_lfht_iter *iter);
struct curcu_lfht_entry *curcu_lfht_next(struct cds_lfht *ht, struct cds_lfht_iter *iter);

#endif /* CURCU_CDS_H */
