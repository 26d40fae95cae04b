/*
 * The order of one room's lines on this node (line_order.h).
 */
#include "line_order.h"

#include <stdlib.h>
#include <string.h>

static ag_line_t *line_new(uint64_t offset, const char *payload, size_t len)
{
    ag_line_t *l = malloc(sizeof(*l) + len);
    if (l == NULL)
        return NULL;
    l->next = NULL;
    l->offset = offset;
    l->len = len;
    memcpy(l->payload, payload, len);
    return l;
}

void ag_line_list_free(ag_line_t *l)
{
    while (l != NULL) {
        ag_line_t *next = l->next;
        free(l);
        l = next;
    }
}

/* Keeps a line while a fetch is in flight. 0, or -1 when it could not be kept (out of memory, or past the bounds). */
static int hold(ag_line_order_t *o, uint64_t offset, const char *payload, size_t len)
{
    if (o->held_n >= AG_LINE_ORDER_MAX_HELD || o->held_bytes + len > AG_LINE_ORDER_MAX_BYTES)
        return -1;
    ag_line_t *l = line_new(offset, payload, len);
    if (l == NULL)
        return -1;
    if (o->held_tail != NULL)
        o->held_tail->next = l;
    else
        o->held = l;
    o->held_tail = l;
    o->held_n++;
    o->held_bytes += len;
    return 0;
}

ag_line_verdict_t ag_line_order_take(ag_line_order_t *o, uint64_t offset, const char *payload, size_t len)
{
    if (o->echo_hi != 0) {
        if (offset > o->echo_lo && offset <= o->echo_hi)
            return AG_LINE_DUP;
        o->echo_lo = o->echo_hi = 0; /* pub/sub is past what the fetch found: no echo can follow */
    }
    if (o->fetch != 0)
        return hold(o, offset, payload, len) == 0 ? AG_LINE_HELD : AG_LINE_FULL;
    if (o->last != 0 && offset > o->last + 1 && hold(o, offset, payload, len) == 0) {
        o->fetch = ++o->fetches;
        return AG_LINE_FETCH;
    }
    /* the next line; or the first one seen; or a gap with no memory to wait for its fetch (it stays); or an offset that
     * went back: Redis pub/sub never hands a line twice, so the
     * room's history began again (the room was made again, or the store lost its data) and counts from there */
    o->last = offset;
    return AG_LINE_NOW;
}

int ag_line_order_begin(ag_line_order_t *o)
{
    if (o->fetch != 0 || o->last == 0)
        return 0;
    o->fetch = ++o->fetches;
    return 1;
}

typedef struct {
    ag_line_t *head, *tail;
    uint64_t cur, missed;
} out_t;

static void emit(out_t *out, ag_line_t *l)
{
    /* a gap the history could not fill is counted; an offset that went back is the history beginning again */
    if (out->cur != 0 && l->offset > out->cur + 1)
        out->missed += l->offset - out->cur - 1;
    out->cur = l->offset;
    l->next = NULL;
    if (out->tail != NULL)
        out->tail->next = l;
    else
        out->head = l;
    out->tail = l;
}

ag_line_t *ag_line_order_settle(ag_line_order_t *o, const json_t *items, uint64_t *missed)
{
    out_t out = {.cur = o->last};
    /* the fetched lines cover (lo, hi]: a line held meanwhile in that range came twice (it was published after the fetch
     * was asked and before the history was read) */
    uint64_t lo = o->last, hi = o->last;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *off = json_array_get(it, 0), *p = json_array_get(it, 1);
        if (!json_is_integer(off) || !json_is_string(p) || json_string_length(p) == 0)
            continue;
        uint64_t n = (uint64_t)json_integer_value(off);
        if (n <= out.cur)
            continue;
        ag_line_t *l = line_new(n, json_string_value(p), json_string_length(p));
        if (l == NULL)
            break; /* counted as missed by the gap it leaves */
        emit(&out, l);
        hi = n;
    }
    ag_line_t *h = o->held;
    while (h != NULL) {
        ag_line_t *next = h->next;
        if (h->offset > lo && h->offset <= hi)
            free(h);
        else
            emit(&out, h);
        h = next;
    }
    o->held = o->held_tail = NULL;
    o->held_n = o->held_bytes = 0;
    o->fetch = 0;
    o->last = out.cur;
    o->echo_lo = lo;
    o->echo_hi = hi > lo ? hi : 0;
    *missed = out.missed;
    return out.head;
}

void ag_line_order_dispose(ag_line_order_t *o)
{
    ag_line_list_free(o->held);
    memset(o, 0, sizeof(*o));
}
