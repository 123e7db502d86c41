/*
 * The out-of-line half of CURCUCDS: every function that publishes a node to a
 * liburcu container or acquires one from it, with the ThreadSanitizer
 * annotations that make liburcu's (uninstrumented, inline-asm) publication
 * visible. Compiled by clang with the build's sanitizer flags, so
 * `__has_feature(thread_sanitizer)` is reliable here (it is not in Swift's
 * view of the header).
 */
#include "CURCUCDS.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CURCU_CDS_TSAN 1
#endif
#endif

#ifdef CURCU_CDS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#define TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
/*
 * liburcu's exported wfcqueue: its inline twin's plain volatile accesses would
 * be instrumented and reported as races; the library's copy is invisible to
 * TSan, and the node annotations below carry the happens-before.
 */
extern bool curcu_wfcq_enqueue_exported(cds_wfcq_head_ptr_t head, struct cds_wfcq_tail *tail,
                                        struct cds_wfcq_node *node) __asm__("cds_wfcq_enqueue");
extern struct cds_wfcq_node *curcu_wfcq_dequeue_exported(struct cds_wfcq_head *head, struct cds_wfcq_tail *tail)
    __asm__("cds_wfcq_dequeue_blocking");
extern enum cds_wfcq_ret curcu_wfcq_splice_exported(struct cds_wfcq_head *dest_head, struct cds_wfcq_tail *dest_tail,
                                                    struct cds_wfcq_head *src_head, struct cds_wfcq_tail *src_tail)
    __asm__("cds_wfcq_splice_blocking");
extern bool curcu_wfcq_empty_exported(cds_wfcq_head_ptr_t head, struct cds_wfcq_tail *tail) __asm__("cds_wfcq_empty");
#define WFCQ_ENQUEUE curcu_wfcq_enqueue_exported
#define WFCQ_DEQUEUE curcu_wfcq_dequeue_exported
#define WFCQ_SPLICE curcu_wfcq_splice_exported
#define WFCQ_EMPTY curcu_wfcq_empty_exported
#else
#define TSAN_RELEASE(addr) ((void)0)
#define TSAN_ACQUIRE(addr) ((void)0)
#define WFCQ_ENQUEUE cds_wfcq_enqueue
#define WFCQ_DEQUEUE cds_wfcq_dequeue_blocking
#define WFCQ_SPLICE cds_wfcq_splice_blocking
#define WFCQ_EMPTY cds_wfcq_empty
#endif

/* ---- wfcqueue ------------------------------------------------------------ */

struct curcu_wfcq *curcu_wfcq_new(void) {
    struct curcu_wfcq *q = malloc(sizeof(*q));
    if (!q)
        curcu_cds_out_of_memory();
    cds_wfcq_init(&q->head, &q->tail);
    return q;
}

void curcu_wfcq_free(struct curcu_wfcq *q) {
    cds_wfcq_destroy(&q->head, &q->tail);
    free(q);
}

void curcu_wfcq_push(struct curcu_wfcq *q, void *box) {
    struct curcu_wfcq_item *item = malloc(sizeof(*item));
    if (!item)
        curcu_cds_out_of_memory();
    cds_wfcq_node_init(&item->node);
    item->box = box;
    TSAN_RELEASE(item);
    (void)WFCQ_ENQUEUE(&q->head, &q->tail, &item->node);
}

void *curcu_wfcq_pop(struct curcu_wfcq *q) {
    struct cds_wfcq_node *node = WFCQ_DEQUEUE(&q->head, &q->tail);
    if (!node)
        return NULL;
    struct curcu_wfcq_item *item = caa_container_of(node, struct curcu_wfcq_item, node);
    TSAN_ACQUIRE(item);
    void *box = item->box;
    free(item);
    return box;
}

bool curcu_wfcq_is_empty(struct curcu_wfcq *q) {
    return WFCQ_EMPTY(&q->head, &q->tail);
}

void curcu_wfcq_splice(struct curcu_wfcq *dest, struct curcu_wfcq *src) {
    (void)WFCQ_SPLICE(&dest->head, &dest->tail, &src->head, &src->tail);
}

/* ---- rculfqueue (always liburcu's exported functions) ----------------------- */

struct cds_lfq_queue_rcu *curcu_lfq_new(void (*call_rcu_head)(struct rcu_head *head,
                                                                void (*func)(struct rcu_head *head))) {
    struct cds_lfq_queue_rcu *q = malloc(sizeof(*q));
    if (!q)
        curcu_cds_out_of_memory();
    cds_lfq_init_rcu(q, call_rcu_head);
    return q;
}

bool curcu_lfq_free(struct cds_lfq_queue_rcu *q) {
    if (cds_lfq_destroy_rcu(q) != 0)
        return false;
    free(q);
    return true;
}

void curcu_lfq_push(struct cds_lfq_queue_rcu *q, void *box) {
    struct curcu_lfq_item *item = malloc(sizeof(*item));
    if (!item)
        curcu_cds_out_of_memory();
    cds_lfq_node_init_rcu(&item->node);
    item->box = box;
    TSAN_RELEASE(item);
    cds_lfq_enqueue_rcu(q, &item->node);
}

struct curcu_lfq_item *curcu_lfq_pop(struct cds_lfq_queue_rcu *q) {
    struct cds_lfq_node_rcu *node = cds_lfq_dequeue_rcu(q);
    if (!node)
        return NULL;
    struct curcu_lfq_item *item = caa_container_of(node, struct curcu_lfq_item, node);
    TSAN_ACQUIRE(item);
    return item;
}

/* ---- rculfhash ------------------------------------------------------------ */

struct curcu_lfht_entry *curcu_lfht_entry_of(struct cds_lfht_node *node) {
    if (!node)
        return NULL;
    struct curcu_lfht_entry *entry = caa_container_of(node, struct curcu_lfht_entry, node);
    TSAN_ACQUIRE(entry);
    return entry;
}

struct curcu_lfht_entry *curcu_lfht_add_unique(struct cds_lfht *ht, unsigned long hash, curcu_lfht_match_fn match,
                                               const void *key, struct curcu_lfht_entry *entry) {
    TSAN_RELEASE(entry);
    return curcu_lfht_entry_of(cds_lfht_add_unique(ht, hash, match, key, &entry->node));
}

struct curcu_lfht_entry *curcu_lfht_add_replace(struct cds_lfht *ht, unsigned long hash, curcu_lfht_match_fn match,
                                                const void *key, struct curcu_lfht_entry *entry) {
    TSAN_RELEASE(entry);
    return curcu_lfht_entry_of(cds_lfht_add_replace(ht, hash, match, key, &entry->node));
}

struct curcu_lfht_entry *curcu_lfht_first(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_first(ht, iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(iter));
}

struct curcu_lfht_entry *curcu_lfht_next(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_next(ht, iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(iter));
}

/* Matches every node: the Swift side compares keys itself, specialised and inlined. */
static int curcu_lfht_match_any(struct cds_lfht_node *node, const void *key) {
    (void)node;
    (void)key;
    return 1;
}

struct curcu_lfht_entry *curcu_lfht_lookup_hash(struct cds_lfht *ht, unsigned long hash, struct cds_lfht_iter *iter) {
    cds_lfht_lookup(ht, hash, curcu_lfht_match_any, NULL, iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(iter));
}

struct curcu_lfht_entry *curcu_lfht_next_same_hash(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_next_duplicate(ht, curcu_lfht_match_any, NULL, iter);
    return curcu_lfht_entry_of(cds_lfht_iter_get_node(iter));
}
