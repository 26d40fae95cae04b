#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

void ag_outbox_init(ag_outbox_t *o, size_t max_frames, size_t max_bytes)
{
    memset(o, 0, sizeof(*o));
    o->max_frames = max_frames != 0 ? max_frames : 1;
    o->max_bytes = max_bytes;
}

static void drop_oldest(ag_outbox_t *o)
{
    ag_outbox_entry_t *e = &o->ring[o->head];
    o->floor = e->seq;
    o->bytes -= e->frame->len;
    ag_frame_release(e->frame);
    free(e->message_id);
    o->head = (o->head + 1) % o->cap;
    o->n--;
}

void ag_outbox_dispose(ag_outbox_t *o)
{
    while (o->n != 0)
        drop_oldest(o);
    free(o->ring);
    o->ring = NULL;
    o->cap = 0;
}

static int reserve(ag_outbox_t *o)
{
    if (o->n < o->cap)
        return AG_OK;
    size_t ncap = o->cap == 0 ? 4 : o->cap * 2;
    if (ncap > o->max_frames)
        ncap = o->max_frames;
    ag_outbox_entry_t *r = malloc(ncap * sizeof(*r));
    if (r == NULL)
        return AG_ENOMEM;
    for (size_t i = 0; i < o->n; i++)
        r[i] = o->ring[(o->head + i) % o->cap];
    free(o->ring);
    o->ring = r;
    o->cap = ncap;
    o->head = 0;
    return AG_OK;
}

ag_frame_t *ag_outbox_push(ag_outbox_t *o, ag_frame_t *f, const char *message_id)
{
    if (f->binary || f->len < 2 || f->data[0] != '{')
        return ag_frame_addref(f);
    char head[40];
    int hl = snprintf(head, sizeof(head), "{\"seq\":%llu%s", (unsigned long long)(o->seq + 1), f->len > 2 ? "," : "");
    size_t len = (size_t)hl + f->len - 1;
    char *buf = malloc(len);
    if (buf == NULL)
        return NULL;
    memcpy(buf, head, (size_t)hl);
    memcpy(buf + hl, f->data + 1, f->len - 1);
    ag_frame_t *out = ag_frame_create(buf, len, 0);
    free(buf);
    char *mid = message_id != NULL ? strdup(message_id) : NULL;
    if (out == NULL || (message_id != NULL && mid == NULL)) {
        if (out != NULL)
            ag_frame_release(out);
        free(mid);
        return NULL;
    }
    o->seq++;
    /* the newest frame is always kept, even alone over max_bytes: a resume right after it still works */
    while (o->n != 0 && (o->n == o->max_frames || o->bytes + len > o->max_bytes))
        drop_oldest(o);
    if (reserve(o) != AG_OK) {
        /* it was sent, but it cannot be sent again: no resume may count on it */
        o->floor = o->seq;
        free(mid);
        return out;
    }
    ag_outbox_entry_t *e = &o->ring[(o->head + o->n) % o->cap];
    e->frame = ag_frame_addref(out);
    e->message_id = mid;
    e->seq = o->seq;
    o->n++;
    o->bytes += len;
    return out;
}

int ag_outbox_since(const ag_outbox_t *o, uint64_t after, void (*cb)(ag_frame_t *f, void *data), void *data)
{
    if (after > o->seq || after < o->floor)
        return AG_ENOENT;
    for (size_t i = 0; i < o->n; i++) {
        ag_outbox_entry_t *e = &o->ring[(o->head + i) % o->cap];
        if (e->seq > after)
            cb(e->frame, data);
    }
    return AG_OK;
}

ag_frame_t *ag_outbox_reply_of(const ag_outbox_t *o, const char *message_id)
{
    for (size_t i = o->n; i-- > 0;) {
        ag_outbox_entry_t *e = &o->ring[(o->head + i) % o->cap];
        if (e->message_id != NULL && strcmp(e->message_id, message_id) == 0)
            return e->frame;
    }
    return NULL;
}

const ag_outbox_entry_t *ag_outbox_at(const ag_outbox_t *o, size_t i)
{
    return &o->ring[(o->head + i) % o->cap];
}

int ag_outbox_keep(ag_outbox_t *o, uint64_t seq, ag_frame_t *f, const char *message_id)
{
    if (seq <= o->seq)
        return AG_EINVAL;
    if (seq > o->seq + 1)
        o->floor = seq - 1; /* a gap is a frame no resume may count on */
    o->seq = seq;
    while (o->n != 0 && (o->n == o->max_frames || o->bytes + f->len > o->max_bytes))
        drop_oldest(o);
    char *mid = message_id != NULL ? strdup(message_id) : NULL;
    if ((message_id != NULL && mid == NULL) || reserve(o) != AG_OK) {
        free(mid);
        o->floor = seq;
        return AG_ENOMEM;
    }
    ag_outbox_entry_t *e = &o->ring[(o->head + o->n) % o->cap];
    e->frame = ag_frame_addref(f);
    e->message_id = mid;
    e->seq = seq;
    o->n++;
    o->bytes += f->len;
    return AG_OK;
}
