/*
 * CURCUCDS: liburcu's concurrent data structures (urcu-cds) for Swift.
 *
 * The containers are flavor-independent: each takes the flavor's
 * `struct rcu_flavor_struct` (urcu_memb_flavor, urcu_qsbr_flavor, ...) at
 * creation, which this header declares without including a flavor header
 * (one flavor header per C module, see CURCUMemb.h).
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

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CURCU_CDS_TSAN 1
#endif
#endif
#ifdef CURCU_CDS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define CURCU_CDS_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#define CURCU_CDS_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
#define CURCU_CDS_TSAN_RELEASE(addr) ((void)0)
#define CURCU_CDS_TSAN_ACQUIRE(addr) ((void)0)
#endif

static inline __attribute__((noreturn)) void curcu_cds_out_of_memory(void) {
    fputs("swift-rcu: out of memory allocating a container node\n", stderr);
    abort();
}

extern const struct rcu_flavor_struct urcu_memb_flavor;
extern const struct rcu_flavor_struct urcu_qsbr_flavor;
extern const struct rcu_flavor_struct urcu_bp_flavor;
extern const struct rcu_flavor_struct urcu_mb_flavor;

CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_memb(void) { return &urcu_memb_flavor; }
CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_qsbr(void) { return &urcu_qsbr_flavor; }
CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_bp(void) { return &urcu_bp_flavor; }
CURCU_CDS_INLINE const struct rcu_flavor_struct *curcu_cds_flavor_mb(void) { return &urcu_mb_flavor; }

/* ---- wait-free concurrent queue (wfcqueue) --------------------------------- */

/* liburcu's exported (out-of-line) wfcqueue, used under TSan. */
extern bool curcu_wfcq_enqueue_exported(cds_wfcq_head_ptr_t head, struct cds_wfcq_tail *tail,
                                        struct cds_wfcq_node *node) __asm__("cds_wfcq_enqueue");
extern struct cds_wfcq_node *curcu_wfcq_dequeue_exported(struct cds_wfcq_head *head,
                                                         struct cds_wfcq_tail *tail)
    __asm__("cds_wfcq_dequeue_blocking");
extern enum cds_wfcq_ret curcu_wfcq_splice_exported(struct cds_wfcq_head *dest_head, struct cds_wfcq_tail *dest_tail,
                                                    struct cds_wfcq_head *src_head, struct cds_wfcq_tail *src_tail)
    __asm__("cds_wfcq_splice_blocking");
extern bool curcu_wfcq_empty_exported(cds_wfcq_head_ptr_t head, struct cds_wfcq_tail *tail)
    __asm__("cds_wfcq_empty");

CURCU_CDS_INLINE void curcu_wfcq_init(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail) {
    cds_wfcq_init(head, tail);
}
CURCU_CDS_INLINE void curcu_wfcq_node_init(struct cds_wfcq_node *node) { cds_wfcq_node_init(node); }
CURCU_CDS_INLINE bool curcu_wfcq_enqueue(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail,
                                         struct cds_wfcq_node *node) {
#ifdef CURCU_CDS_TSAN
    return curcu_wfcq_enqueue_exported(head, tail, node);
#else
    return cds_wfcq_enqueue(head, tail, node);
#endif
}
CURCU_CDS_INLINE bool curcu_wfcq_empty(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail) {
#ifdef CURCU_CDS_TSAN
    return curcu_wfcq_empty_exported(head, tail);
#else
    return cds_wfcq_empty(head, tail);
#endif
}

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

CURCU_CDS_INLINE struct curcu_wfcq *curcu_wfcq_new(void) {
    struct curcu_wfcq *q = malloc(sizeof(*q));
    if (!q)
        curcu_cds_out_of_memory();
    cds_wfcq_init(&q->head, &q->tail);
    return q;
}
/* The queue must be empty. */
CURCU_CDS_INLINE void curcu_wfcq_free(struct curcu_wfcq *q) {
    cds_wfcq_destroy(&q->head, &q->tail);
    free(q);
}

/* Wait-free: an exchange on the tail and a store. */
CURCU_CDS_INLINE void curcu_wfcq_push(struct curcu_wfcq *q, void *box) {
    struct curcu_wfcq_item *item = malloc(sizeof(*item));
    if (!item)
        curcu_cds_out_of_memory();
    cds_wfcq_node_init(&item->node);
    item->box = box;
    CURCU_CDS_TSAN_RELEASE(item);
    (void)curcu_wfcq_enqueue(&q->head, &q->tail, &item->node);
}

/* Takes the queue's dequeue lock; returns the retained object or NULL when empty. */
CURCU_CDS_INLINE void *curcu_wfcq_pop(struct curcu_wfcq *q) {
#ifdef CURCU_CDS_TSAN
    struct cds_wfcq_node *node = curcu_wfcq_dequeue_exported(&q->head, &q->tail);
#else
    struct cds_wfcq_node *node = cds_wfcq_dequeue_blocking(&q->head, &q->tail);
#endif
    if (!node)
        return NULL;
    struct curcu_wfcq_item *item = caa_container_of(node, struct curcu_wfcq_item, node);
    CURCU_CDS_TSAN_ACQUIRE(item);
    void *box = item->box;
    free(item);
    return box;
}

CURCU_CDS_INLINE bool curcu_wfcq_is_empty(struct curcu_wfcq *q) {
    return curcu_wfcq_empty(&q->head, &q->tail);
}

/* Moves every node of `src` to the tail of `dest` (takes src's dequeue lock). */
CURCU_CDS_INLINE void curcu_wfcq_splice(struct curcu_wfcq *dest, struct curcu_wfcq *src) {
    CURCU_CDS_TSAN_RELEASE(src);
#ifdef CURCU_CDS_TSAN
    (void)curcu_wfcq_splice_exported(&dest->head, &dest->tail, &src->head, &src->tail);
#else
    (void)cds_wfcq_splice_blocking(&dest->head, &dest->tail, &src->head, &src->tail);
#endif
}

/* ---- RCU lock-free queue (rculfqueue) -------------------------------------- */

struct curcu_lfq_item {
    struct cds_lfq_node_rcu node;
    void *box;
};

/* The queue frees its dummy nodes with the flavor's call_rcu. */
CURCU_CDS_INLINE struct cds_lfq_queue_rcu *curcu_lfq_new(const struct rcu_flavor_struct *flavor) {
    struct cds_lfq_queue_rcu *q = malloc(sizeof(*q));
    if (!q)
        curcu_cds_out_of_memory();
    cds_lfq_init_rcu(q, flavor->update_call_rcu);
    return q;
}
/* Returns false (and frees nothing) when the queue is not empty. */
CURCU_CDS_INLINE bool curcu_lfq_free(struct cds_lfq_queue_rcu *q) {
    if (cds_lfq_destroy_rcu(q) != 0)
        return false;
    free(q);
    return true;
}
/* Call inside a read section. */
CURCU_CDS_INLINE void curcu_lfq_push(struct cds_lfq_queue_rcu *q, void *box) {
    struct curcu_lfq_item *item = malloc(sizeof(*item));
    if (!item)
        curcu_cds_out_of_memory();
    cds_lfq_node_init_rcu(&item->node);
    item->box = box;
    CURCU_CDS_TSAN_RELEASE(item);
    cds_lfq_enqueue_rcu(q, &item->node);
}
/* Call inside a read section. Returns the item (free it with curcu_lfq_item_free
 * after a grace period: concurrent dequeuers may still read it) or NULL. */
CURCU_CDS_INLINE struct curcu_lfq_item *curcu_lfq_pop(struct cds_lfq_queue_rcu *q) {
    struct cds_lfq_node_rcu *node = cds_lfq_dequeue_rcu(q);
    if (!node)
        return NULL;
    struct curcu_lfq_item *item = caa_container_of(node, struct curcu_lfq_item, node);
    CURCU_CDS_TSAN_ACQUIRE(item);
    return item;
}
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
    void *owner; /* the Swift node object (unretained) */
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
CURCU_CDS_INLINE struct cds_list_head *curcu_list_node_link(struct curcu_list_node *node) { return &node->link; }

/* ---- RCU lock-free hash table (rculfhash) ---------------------------------- */

struct curcu_lfht_entry {
    struct cds_lfht_node node;
    void *box; /* retained Swift object holding the key and value */
};

typedef int (*curcu_lfht_match_fn)(struct cds_lfht_node *node, const void *key);

CURCU_CDS_INLINE struct cds_lfht *curcu_lfht_new(unsigned long initial_buckets, const struct rcu_flavor_struct *flavor) {
    return cds_lfht_new_flavor(initial_buckets, initial_buckets, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                               flavor, NULL);
}
CURCU_CDS_INLINE int curcu_lfht_destroy(struct cds_lfht *ht) { return cds_lfht_destroy(ht, NULL); }

CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_entry_new(void *box) {
    struct curcu_lfht_entry *entry = malloc(sizeof(*entry));
    if (!entry)
        curcu_cds_out_of_memory();
    cds_lfht_node_init(&entry->node);
    entry->box = box;
    return entry;
}
CURCU_CDS_INLINE void curcu_lfht_entry_free(void *entry) { free(entry); }

/* The entry of a node found by a lookup or an iteration; tells TSan about its publication. */
CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_entry_of(struct cds_lfht_node *node) {
    if (!node)
        return NULL;
    struct curcu_lfht_entry *entry = caa_container_of(node, struct curcu_lfht_entry, node);
    CURCU_CDS_TSAN_ACQUIRE(entry);
    return entry;
}
CURCU_CDS_INLINE void *curcu_lfht_entry_box(const struct curcu_lfht_entry *entry) { return entry->box; }

/* All below: call inside a read section of the table's flavor. */
CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_lookup(struct cds_lfht *ht, unsigned long hash,
                                                            curcu_lfht_match_fn match, const void *key) {
    struct cds_lfht_iter iter;
    cds_lfht_lookup(ht, hash, match, key, &iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(&iter));
}
/* Returns `entry` when added, or the entry already holding the key. */
CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_add_unique(struct cds_lfht *ht, unsigned long hash,
                                                                curcu_lfht_match_fn match, const void *key,
                                                                struct curcu_lfht_entry *entry) {
    CURCU_CDS_TSAN_RELEASE(entry);
    return curcu_lfht_entry_of(cds_lfht_add_unique(ht, hash, match, key, &entry->node));
}
/* Returns the entry replaced, or NULL when the key was absent (then `entry` was added). */
CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_add_replace(struct cds_lfht *ht, unsigned long hash,
                                                                 curcu_lfht_match_fn match, const void *key,
                                                                 struct curcu_lfht_entry *entry) {
    CURCU_CDS_TSAN_RELEASE(entry);
    return curcu_lfht_entry_of(cds_lfht_add_replace(ht, hash, match, key, &entry->node));
}
/* True when this call removed the entry (false: someone else did first). */
CURCU_CDS_INLINE bool curcu_lfht_del(struct cds_lfht *ht, struct curcu_lfht_entry *entry) {
    return cds_lfht_del(ht, &entry->node) == 0;
}
CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_first(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_first(ht, iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(iter));
}
CURCU_CDS_INLINE struct curcu_lfht_entry *curcu_lfht_next(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_next(ht, iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(iter));
}
CURCU_CDS_INLINE unsigned long curcu_lfht_count(struct cds_lfht *ht) {
    long before = 0, after = 0;
    unsigned long count = 0;
    cds_lfht_count_nodes(ht, &before, &count, &after);
    return count;
}

#endif /* CURCU_CDS_H */
