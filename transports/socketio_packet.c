/*
 * socket.io v5 packet codec (see socketio_packet.h).
 */
#include "socketio_packet.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Event names socket.io-parser refuses in an EVENT (they mean something to the emitters on either side). */
static const char *const reserved_events[] = {"connect",     "connect_error",  "disconnect", "disconnecting",
                                              "newListener", "removeListener", NULL};

int ag_sio_is_reserved_event(const char *name)
{
    for (size_t i = 0; reserved_events[i] != NULL; i++)
        if (strcmp(reserved_events[i], name) == 0)
            return 1;
    return 0;
}

static int payload_valid(ag_sio_type_t type, const json_t *data)
{
    switch (type) {
    case AG_SIO_CONNECT:
        return data == NULL || json_is_object(data);
    case AG_SIO_DISCONNECT:
        return data == NULL;
    case AG_SIO_CONNECT_ERROR:
        return data != NULL && (json_is_string(data) || json_is_object(data));
    case AG_SIO_EVENT:
    case AG_SIO_BINARY_EVENT: {
        const json_t *name = json_array_get(data, 0);
        return json_is_array(data) && name != NULL &&
               (json_is_number(name) || (json_is_string(name) && !ag_sio_is_reserved_event(json_string_value(name))));
    }
    case AG_SIO_ACK:
    case AG_SIO_BINARY_ACK:
        return json_is_array(data);
    }
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int ag_sio_decode(const char *s, size_t len, ag_sio_packet_t *p)
{
    size_t i = 0;
    memset(p, 0, sizeof(*p));
    p->id = -1;
    if (len == 0 || s[0] < '0' || s[0] > '6')
        return AG_EINVAL;
    p->type = (ag_sio_type_t)(s[0] - '0');
    i = 1;
    if (p->type == AG_SIO_BINARY_EVENT || p->type == AG_SIO_BINARY_ACK) {
        uint64_t n = 0;
        size_t start = i;
        while (i < len && is_digit(s[i]) && i - start < 9)
            n = n * 10 + (uint64_t)(s[i++] - '0');
        if (i == start || i >= len || s[i] != '-' || n < 1)
            return AG_EINVAL;
        p->attachments = (unsigned)n;
        i++;
    }
    if (i < len && s[i] == '/') {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        p->nsp = s + start;
        p->nsp_len = i - start;
        if (i < len)
            i++; /* the comma */
    } else {
        p->nsp = "/";
        p->nsp_len = 1;
    }
    if (i < len && is_digit(s[i])) {
        /* Ack ids are a client's counter; 15 digits keep them exact as JavaScript numbers. */
        int64_t id = 0;
        size_t start = i;
        while (i < len && is_digit(s[i])) {
            if (i - start >= 15)
                return AG_EINVAL;
            id = id * 10 + (s[i++] - '0');
        }
        p->id = id;
    }
    if (i < len) {
        json_error_t err;
        p->data = ag_json_loadb(s + i, len - i, JSON_DECODE_ANY, &err);
        if (p->data == NULL)
            return AG_EINVAL;
    }
    if (!payload_valid(p->type, p->data)) {
        json_decref(p->data);
        p->data = NULL;
        return AG_EINVAL;
    }
    return 0;
}

void ag_sio_packet_dispose(ag_sio_packet_t *p)
{
    json_decref(p->data);
    p->data = NULL;
}

int ag_sio_nsp_is_main(const ag_sio_packet_t *p)
{
    return p->nsp_len == 1 && p->nsp[0] == '/';
}

ag_frame_t *ag_sio_encode(ag_sio_type_t type, const char *nsp, int64_t id, const char *prefix, const char *json, size_t json_len,
                          const char *suffix)
{
    char head[48];
    int hlen;
    int with_nsp = nsp != NULL && strcmp(nsp, "/") != 0;
    size_t nsp_len = with_nsp ? strlen(nsp) + 1 : 0;
    if (id >= 0)
        hlen = snprintf(head, sizeof(head), "%d%lld", (int)type, (long long)id);
    else
        hlen = snprintf(head, sizeof(head), "%d", (int)type);
    size_t plen = prefix != NULL ? strlen(prefix) : 0, slen = suffix != NULL ? strlen(suffix) : 0;
    if (json == NULL)
        json_len = 0;
    size_t total = (size_t)hlen + nsp_len + plen + json_len + slen;
    ag_frame_t *f = malloc(sizeof(*f) + total + 1);
    if (f == NULL)
        return NULL;
    f->refcnt = 1;
    f->binary = 0;
    f->len = total;
    char *o = f->data;
    *o++ = head[0];
    if (with_nsp) {
        memcpy(o, nsp, nsp_len - 1);
        o += nsp_len - 1;
        *o++ = ',';
    }
    memcpy(o, head + 1, (size_t)hlen - 1);
    o += hlen - 1;
    if (plen != 0) {
        memcpy(o, prefix, plen);
        o += plen;
    }
    if (json_len != 0) {
        memcpy(o, json, json_len);
        o += json_len;
    }
    if (slen != 0) {
        memcpy(o, suffix, slen);
        o += slen;
    }
    *o = '\0';
    return f;
}

ag_frame_t *ag_sio_encode_event(const char *nsp, int64_t id, const char *name, const char *json, size_t json_len)
{
    json_t *jname = json_string(name);
    char *ename = jname != NULL ? json_dumps(jname, JSON_ENCODE_ANY) : NULL;
    json_decref(jname);
    if (ename == NULL)
        return NULL;
    size_t n = strlen(ename);
    char *prefix = malloc(n + 3);
    ag_frame_t *f = NULL;
    if (prefix != NULL) {
        prefix[0] = '[';
        memcpy(prefix + 1, ename, n);
        prefix[n + 1] = json != NULL ? ',' : '\0';
        prefix[n + 2] = '\0';
        f = ag_sio_encode(AG_SIO_EVENT, nsp, id, prefix, json, json_len, "]");
    }
    free(prefix);
    free(ename);
    return f;
}
