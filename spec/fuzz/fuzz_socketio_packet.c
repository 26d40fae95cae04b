/*
 * The socket.io codec (transports/socketio_packet.c) on arbitrary bytes. A packet that decodes is encoded again from
 * its parts and must decode to the same type, namespace, ack id and data; an event name from the input must survive
 * ag_sio_encode_event.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "socketio_packet.h"

static void check_roundtrip(const ag_sio_packet_t *p)
{
    if (p->type == AG_SIO_BINARY_EVENT || p->type == AG_SIO_BINARY_ACK)
        return; /* attachments are not re-encoded: the node does not serve binary packets */
    if (p->nsp_len == 0 || p->nsp[0] != '/' || memchr(p->nsp, '\0', p->nsp_len) != NULL)
        return;
    char *nsp = strndup(p->nsp, p->nsp_len);
    char *json = p->data != NULL ? json_dumps(p->data, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    if (nsp == NULL || (p->data != NULL && json == NULL))
        abort();
    ag_frame_t *f = ag_sio_encode(p->type, nsp, p->id, NULL, json, json != NULL ? strlen(json) : 0, NULL);
    if (f == NULL)
        abort();
    ag_sio_packet_t q;
    if (ag_sio_decode(f->data, f->len, &q) != 0)
        abort();
    if (q.type != p->type || q.id != p->id || q.nsp_len != p->nsp_len || memcmp(q.nsp, p->nsp, p->nsp_len) != 0 ||
        (q.data == NULL) != (p->data == NULL) || (q.data != NULL && !json_equal(q.data, p->data)))
        abort();
    ag_sio_packet_dispose(&q);
    ag_frame_release(f);
    free(json);
    free(nsp);
}

/* The input (up to its first NUL) as an event name: the encoded event is a valid EVENT whose first element is it. */
static void check_event_name(const char *data, size_t size)
{
    char *name = strndup(data, size);
    if (name == NULL)
        abort();
    json_t *jname = json_string(name);
    if (jname == NULL || ag_sio_is_reserved_event(name)) {
        free(name);
        json_decref(jname);
        return; /* not UTF-8, or a name socket.io-parser refuses */
    }
    ag_frame_t *f = ag_sio_encode_event("/", 7, name, "{\"a\":1}", 7);
    if (f == NULL)
        abort();
    ag_sio_packet_t q;
    if (ag_sio_decode(f->data, f->len, &q) != 0 || q.type != AG_SIO_EVENT || q.id != 7 ||
        !json_equal(json_array_get(q.data, 0), jname))
        abort();
    ag_sio_packet_dispose(&q);
    ag_frame_release(f);
    json_decref(jname);
    free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_sio_packet_t p;
    if (ag_sio_decode((const char *)data, size, &p) == 0) {
        if (p.type > AG_SIO_BINARY_ACK || p.id < -1 || (p.nsp_len != 0 && p.nsp == NULL))
            abort();
        check_roundtrip(&p);
        ag_sio_packet_dispose(&p);
    }
    check_event_name((const char *)data, size);
    return 0;
}
