/* Placeholder: the memory store comes with the session layer (issue 2). */
#include "store.h"
#include <stdlib.h>

static void destroy(ag_store_t *s)
{
    free(s);
}

static const ag_store_ops_t ops = {.name = "memory", .destroy = destroy};

ag_store_t *ag_store_memory_create(void)
{
    ag_store_t *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->ops = &ops;
    return s;
}
