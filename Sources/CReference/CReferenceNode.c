#include <stdio.h>
#include <stdlib.h>
#include "CReference.h"

struct creference_node *creference_node_create(intptr_t value) {
    struct creference_node *node = malloc(sizeof(*node));
    if (!node) {
        fprintf(stderr, "rcu-stress: out of memory\n");
        abort();
    }
    node->value = value;
    return node;
}

void creference_node_destroy(struct creference_node *node) {
    free(node);
}

intptr_t creference_opaque(intptr_t value) {
    return value;
}
