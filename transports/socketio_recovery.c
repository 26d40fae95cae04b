/*
 * socket.io's connection state recovery, the layer's side (socketio.h, README "Resume"): where a client stands (the
 * offset string every event carries), reading what a client presents back, and frames without the resume core's
 * numbers. The CONNECT that recovers is socketio.c's.
 */
#include "socketio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rooms.h"

void ag__sio_tracked_clear(ag__sio_tracked_t *t, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(t[i].name);
    *n = 0;
}

uint32_t ag__sio_room_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

uint64_t ag__sio_text_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* A room line reaches the client: its room's offset moves on (1: the client has it already). A room the offsets cannot
 * name makes them unusable. */
static int track_room(ag_conn_t *conn, ag__sio_state_t *st, const char *name, uint64_t offset)
{
    uint32_t h = ag__sio_room_hash(name);
    for (size_t i = 0; i < st->num_rooms; i++) {
        if (st->rooms[i].hash != h)
            continue;
        if (strcmp(st->rooms[i].name, name) != 0) {
            st->overflow = 1; /* two rooms, one hash: an offset could not tell them apart */
            return 0;
        }
        if (offset <= st->rooms[i].offset)
            return 1;
        st->rooms[i].offset = offset;
        return 0;
    }
    /* room lines of rooms the connection left are of no use to a recovery */
    for (size_t i = 0; st->num_rooms == AG__SIO_TRACKED_ROOMS && i < st->num_rooms; i++) {
        if (!ag__conn_in_room(conn, st->rooms[i].name)) {
            free(st->rooms[i].name);
            st->rooms[i] = st->rooms[--st->num_rooms];
        }
    }
    char *copy = st->num_rooms < AG__SIO_TRACKED_ROOMS ? strdup(name) : NULL;
    if (copy == NULL) {
        st->overflow = 1;
        return 0;
    }
    st->rooms[st->num_rooms++] = (ag__sio_tracked_t){h, offset, copy};
    return 0;
}

void ag__sio_forget_room(ag__sio_state_t *st, const char *room)
{
    for (size_t i = 0; i < st->num_rooms; i++) {
        if (strcmp(st->rooms[i].name, room) == 0) {
            free(st->rooms[i].name);
            st->rooms[i] = st->rooms[--st->num_rooms];
            return;
        }
    }
}

/* What a translated session frame tells about where the client stands: a numbered frame's seq, a room line's offset. */
int ag__sio_track(ag_conn_t *conn, ag__sio_state_t *st, json_t *obj)
{
    json_t *seq = json_object_get(obj, "seq"), *off = json_object_get(obj, "offset"), *room = json_object_get(obj, "room");
    if (json_is_integer(seq)) {
        if (json_integer_value(seq) > 0 && (uint64_t)json_integer_value(seq) > st->seq)
            st->seq = (uint64_t)json_integer_value(seq);
    } else if (json_is_integer(off) && json_integer_value(off) > 0 && json_is_string(room)) {
        return track_room(conn, st, json_string_value(room), (uint64_t)json_integer_value(off));
    }
    return 0;
}

/* "<seq>" then ".<room hash, 8 hex digits>-<offset>" per tracked room; "x" when they cannot be told. */
void ag__sio_offset_text(const ag__sio_state_t *st, char buf[AG__SIO_OFFSET_MAX + 1])
{
    if (st->overflow) {
        snprintf(buf, AG__SIO_OFFSET_MAX + 1, "x");
        return;
    }
    size_t n = (size_t)snprintf(buf, AG__SIO_OFFSET_MAX + 1, "%llu", (unsigned long long)st->seq);
    for (size_t i = 0; i < st->num_rooms && n < AG__SIO_OFFSET_MAX; i++)
        n += (size_t)snprintf(buf + n, AG__SIO_OFFSET_MAX + 1 - n, ".%08x-%llu", (unsigned)st->rooms[i].hash,
                              (unsigned long long)st->rooms[i].offset);
}

/* A decimal number of 1 to 20 digits that fits an int64 (offsets and seqs travel as JSON integers); advances *p. */
static int read_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    size_t n = 0;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        if (n == 19 || (x == 0 && n == 1))
            return -1; /* too long, or a leading zero */
        x = x * 10 + (uint64_t)(*s - '0');
    }
    if (n == 0 || x > (uint64_t)INT64_MAX)
        return -1;
    *p = s;
    *v = x;
    return 0;
}

/* The offset a client presents (untrusted): its seq and, for each room it names, the offset, as {room: offset} in
 * offsets, the rooms' names read from st (the connection it recovers) into out. 0, or -1 when any of it is wrong. */
int ag__sio_offset_parse(const ag__sio_state_t *st, const char *text, uint64_t *seq, json_t *offsets, ag__sio_tracked_t *out,
                         size_t *nout)
{
    const char *p = text;
    *nout = 0;
    if (strlen(text) > AG__SIO_OFFSET_MAX || read_u64(&p, seq) != 0)
        return -1;
    while (*p != '\0') {
        char hex[9];
        uint64_t off;
        if (*p++ != '.' || *nout == AG__SIO_TRACKED_ROOMS || strspn(p, "0123456789abcdef") < 8)
            return -1;
        memcpy(hex, p, 8);
        hex[8] = '\0';
        p += 8;
        if (*p++ != '-' || read_u64(&p, &off) != 0 || off == 0)
            return -1;
        uint32_t h = (uint32_t)strtoul(hex, NULL, 16);
        const ag__sio_tracked_t *t = NULL;
        for (size_t i = 0; i < st->num_rooms && t == NULL; i++)
            if (st->rooms[i].hash == h)
                t = &st->rooms[i];
        if (t == NULL || json_object_get(offsets, t->name) != NULL)
            return -1; /* a room it never got a line of, or named twice */
        char *name = strdup(t->name);
        if (name == NULL || json_object_set_new(offsets, t->name, json_integer((json_int_t)off)) != 0) {
            free(name);
            return -1;
        }
        out[(*nout)++] = (ag__sio_tracked_t){h, off, name};
    }
    return 0;
}

ag__sio_body_t ag__sio_bare_body(const ag_frame_t *f)
{
    static const char head[] = "{\"seq\":";
    ag__sio_body_t b = {"", f->data, "", f->len};
    const char *end = f->data + f->len;
    if (f->len > sizeof(head) && memcmp(f->data, head, sizeof(head) - 1) == 0) {
        const char *p = f->data + sizeof(head) - 1;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p < end && (*p == ',' || *p == '}')) {
            b.lead = "{";
            b.data = *p == ',' ? p + 1 : p;
            b.len = (size_t)(end - b.data);
        }
        return b;
    }
    /* the offset is the last member of a room line (rooms_history.c, ag__rooms_with_offset) */
    const char *p = end - 1;
    if (b.len < 12 || *p != '}')
        return b;
    for (p--; p > b.data && *p >= '0' && *p <= '9'; p--)
        ;
    static const char key[] = "\"offset\":";
    size_t kl = sizeof(key) - 1;
    if (p == end - 2 || (size_t)(p - b.data) < kl || memcmp(p + 1 - kl, key, kl) != 0)
        return b;
    p -= kl; /* at the character before the key: ',' or the opening brace */
    if (*p == ',') {
        b.len = (size_t)(p - b.data);
        b.trail = "}";
    } else if (*p == '{' && p == b.data) {
        b.len = 1;
        b.trail = "}";
    }
    return b;
}

/* "<opening><lead>" and "<trail><closing>" around b, as one packet. */
ag_frame_t *ag__sio_encode_body(ag_sio_type_t type, int64_t id, const char *opening, const ag__sio_body_t *b, const char *closing)
{
    size_t ol = strlen(opening), cl = strlen(closing);
    char *pre = malloc(ol + 2), *suf = malloc(cl + 2);
    ag_frame_t *f = NULL;
    if (pre != NULL && suf != NULL) {
        snprintf(pre, ol + 2, "%s%s", opening, b->lead);
        snprintf(suf, cl + 2, "%s%s", b->trail, closing);
        f = ag_sio_encode(type, NULL, id, pre, b->data, b->len, suf);
    }
    free(pre);
    free(suf);
    return f;
}

/* EVENT ["<name>",<json>,"<offset>"]: the offset, last, is what socket.io-client keeps and presents when it comes back. */
ag_frame_t *ag__sio_encode_event_offset(const ag__sio_state_t *st, const char *name, const ag__sio_body_t *b)
{
    json_t *jn = json_string(name);
    char *esc = jn != NULL ? json_dumps(jn, JSON_ENCODE_ANY) : NULL;
    json_decref(jn);
    char off[AG__SIO_OFFSET_MAX + 1], closing[AG__SIO_OFFSET_MAX + 8];
    ag__sio_offset_text(st, off);
    snprintf(closing, sizeof(closing), ",\"%s\"]", off);
    size_t el = esc != NULL ? strlen(esc) : 0;
    char *opening = esc != NULL ? malloc(el + 3) : NULL;
    ag_frame_t *f = NULL;
    if (opening != NULL) {
        snprintf(opening, el + 3, "[%s,", esc);
        f = ag__sio_encode_body(AG_SIO_EVENT, -1, opening, b, closing);
    }
    free(opening);
    free(esc);
    return f;
}
