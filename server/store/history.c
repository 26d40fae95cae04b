#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

ag_store_hist_t *ag_store_hist_create(size_t cap)
{
    ag_store_hist_t *h = cap != 0 ? calloc(1, sizeof(*h)) : NULL;
    if (h == NULL || (h->ring = calloc(cap, sizeof(*h->ring))) == NULL) {
        free(h);
        return NULL;
    }
    h->cap = cap;
    uint64_t e;
    ag_random_bytes(&e, sizeof(e));
    snprintf(h->epoch, sizeof(h->epoch), "%016llx", (unsigned long long)e);
    return h;
}

static void drop_oldest(ag_store_hist_t *h)
{
    ag_store_hline_t *l = &h->ring[h->head];
    h->floor = l->offset;
    h->bytes -= l->len;
    free(l->data);
    l->data = NULL;
    h->head = (h->head + 1) % h->cap;
    h->n--;
}

void ag_store_hist_free(ag_store_hist_t *h)
{
    if (h == NULL)
        return;
    while (h->n != 0)
        drop_oldest(h);
    free(h->ring);
    free(h);
}

void ag_store_hist_expire(ag_store_hist_t *h, uint64_t max_age_ms, uint64_t now)
{
    while (h->n != 0 && max_age_ms != 0 && h->ring[h->head].at_ms + max_age_ms < now)
        drop_oldest(h);
}

uint64_t ag_store_hist_append(ag_store_hist_t *h, char *line, size_t len, size_t max_bytes, uint64_t max_age_ms, uint64_t now)
{
    if (line == NULL || len > max_bytes) {
        free(line);
        while (h->n != 0)
            drop_oldest(h);
        return h->floor = ++h->last;
    }
    ag_store_hist_expire(h, max_age_ms, now);
    while (h->n != 0 && (h->n == h->cap || h->bytes + len > max_bytes))
        drop_oldest(h);
    ag_store_hline_t *l = &h->ring[(h->head + h->n) % h->cap];
    l->offset = ++h->last;
    l->at_ms = now;
    l->len = len;
    l->data = line;
    h->n++;
    h->bytes += len;
    return l->offset;
}

const ag_store_hline_t *ag_store_hist_line(const ag_store_hist_t *h, size_t i)
{
    return &h->ring[(h->head + i) % h->cap];
}

int ag_store_hist_has_after(const ag_store_hist_t *h, uint64_t after)
{
    return after >= h->floor && after <= h->last;
}

json_t *ag_store_hist_dump(const ag_store_hist_t *h)
{
    json_t *lines = json_array();
    for (size_t i = 0; lines != NULL && i < h->n; i++) {
        const ag_store_hline_t *l = ag_store_hist_line(h, i);
        if (json_array_append_new(lines, json_pack("[I,I,s%]", (json_int_t)l->offset, (json_int_t)l->at_ms, l->data, l->len)) !=
            0) {
            json_decref(lines);
            lines = NULL;
        }
    }
    if (lines == NULL)
        return NULL;
    return json_pack("{s:s,s:I,s:I,s:o}", "epoch", h->epoch, "last", (json_int_t)h->last, "floor", (json_int_t)h->floor, "lines",
                     lines);
}

/* A non-negative JSON integer, or -1. */
static json_int_t count_of(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

ag_store_hist_t *ag_store_hist_load(const json_t *v, size_t cap, size_t max_bytes, const char **err)
{
    const char *epoch = json_string_value(json_object_get(v, "epoch"));
    json_int_t last = count_of(json_object_get(v, "last")), floor = count_of(json_object_get(v, "floor"));
    const json_t *lines = json_object_get(v, "lines");
    *err = "not a room history";
    if (epoch == NULL || strlen(epoch) != 16 || strspn(epoch, "0123456789abcdef") != 16 || last < 0 || floor < 0 || floor > last ||
        !json_is_array(lines))
        return NULL;
    size_t n = json_array_size(lines);
    *err = "room history over its bounds";
    if (n > cap || (json_int_t)n != last - floor)
        return NULL;
    ag_store_hist_t *h = ag_store_hist_create(cap);
    if (h == NULL) {
        *err = "out of memory";
        return NULL;
    }
    memcpy(h->epoch, epoch, sizeof(h->epoch));
    h->last = h->floor = (uint64_t)floor;
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(lines, i), *text = json_array_get(it, 2);
        json_int_t off = count_of(json_array_get(it, 0)), at = count_of(json_array_get(it, 1));
        size_t len = json_string_length(text);
        *err = "a room history line out of order or malformed";
        if (!json_is_array(it) || json_array_size(it) != 3 || off != floor + 1 + (json_int_t)i || at < 0 || !json_is_string(text) ||
            memchr(json_string_value(text), '\0', len) != NULL || h->bytes + len > max_bytes) {
            ag_store_hist_free(h);
            return NULL;
        }
        char *copy = malloc(len + 1);
        if (copy == NULL) {
            *err = "out of memory";
            ag_store_hist_free(h);
            return NULL;
        }
        memcpy(copy, json_string_value(text), len + 1);
        ag_store_hist_append(h, copy, len, max_bytes, 0, (uint64_t)at);
    }
    h->last = (uint64_t)last;
    *err = NULL;
    return h;
}
