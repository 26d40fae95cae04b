/*
 * The socket.io conformance mode (servers.socketio.conformance): on the socket.io path, sessions answer the way the
 * reference server of socket.io-protocol's test suite does, instead of carrying connections. Namespaces "/" and
 * "/custom" accept CONNECT (with or without an auth payload) and answer with the sid, then an "auth" event carrying the
 * payload; "message" is emitted back as "message-back" with the same arguments; "message-with-ack" is acknowledged
 * with its arguments; binary attachments are collected and sent back after their packet. It has no connection, rooms
 * or hooks: a test mode, like engine.io's echo mode.
 */
#include "socketio.h"
#include "eio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTACHMENTS AG_SIO_MAX_ATTACHMENTS

typedef struct {
    ag__eio_session_t *session;
    h2o_timeout_entry_t connect_timer;
    unsigned connected; /* bit 0: "/", bit 1: "/custom" */
    /* a binary packet waiting for its attachments */
    ag_sio_packet_t pending;
    int has_pending;
    ag_frame_t *attachments[MAX_ATTACHMENTS];
    unsigned got;
} conf_t;

static int nsp_bit(const ag_sio_packet_t *p)
{
    if (ag_sio_nsp_is_main(p))
        return 1;
    if (p->nsp_len == 7 && memcmp(p->nsp, "/custom", 7) == 0)
        return 2;
    return 0;
}

static void fail(conf_t *c, const char *what)
{
    ag_log_limited(AG_LOG_INFO, "socket.io", c->session->sid, "conformance: %s; closing", what);
    ag__eio_session_close_self(c->session, &AG_DISCONNECT_PROTOCOL_ERROR);
}

/* "<type>[<n>-][<nsp>,][<id>]<json>" as one message. */
static void send_packet(conf_t *c, int type, unsigned attachments, const ag_sio_packet_t *p, int64_t id, const json_t *data)
{
    char *json = data != NULL ? json_dumps(data, AG_JSON_FLAGS) : NULL;
    size_t jlen = json != NULL ? strlen(json) : 0;
    char head[64];
    int n = snprintf(head, sizeof(head), "%d", type);
    if (attachments != 0)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "%u-", attachments);
    size_t nsp_len = ag_sio_nsp_is_main(p) ? 0 : p->nsp_len;
    char idbuf[24] = "";
    if (id >= 0)
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
    size_t total = (size_t)n + nsp_len + (nsp_len != 0) + strlen(idbuf) + jlen;
    char *text = malloc(total + 1);
    if (text != NULL) {
        size_t o = 0;
        memcpy(text, head, (size_t)n);
        o = (size_t)n;
        if (nsp_len != 0) {
            memcpy(text + o, p->nsp, nsp_len);
            o += nsp_len;
            text[o++] = ',';
        }
        memcpy(text + o, idbuf, strlen(idbuf));
        o += strlen(idbuf);
        if (jlen != 0)
            memcpy(text + o, json, jlen);
        ag_frame_t *f = ag_frame_create(text, total, 0);
        if (f != NULL)
            ag__eio_send_message(c->session, f);
        ag_frame_release(f);
        free(text);
    }
    free(json);
}

static void on_connect(conf_t *c, const ag_sio_packet_t *p)
{
    int bit = nsp_bit(p);
    if (bit == 0) {
        json_t *err = json_pack("{s:s}", "message", "Invalid namespace");
        send_packet(c, AG_SIO_CONNECT_ERROR, 0, p, -1, err);
        json_decref(err);
        return;
    }
    if (c->connected & (unsigned)bit) {
        fail(c, "CONNECT to a namespace already connected");
        return;
    }
    c->connected |= (unsigned)bit;
    if (h2o_timeout_is_linked(&c->connect_timer))
        h2o_timeout_unlink(&c->connect_timer);
    char sid[AG_EIO_SID_LEN + 1];
    ag_eio_sid_generate(sid);
    json_t *hs = json_pack("{s:s}", "sid", sid);
    send_packet(c, AG_SIO_CONNECT, 0, p, -1, hs);
    json_decref(hs);
    json_t *auth = json_pack("[s,o]", "auth", p->data != NULL ? json_incref(p->data) : json_object());
    send_packet(c, AG_SIO_EVENT, 0, p, -1, auth);
    json_decref(auth);
}

/* An event (its attachments, if any, already in c->attachments): "message" back as "message-back", "message-with-ack"
 * acknowledged with its arguments. */
static void on_event(conf_t *c, const ag_sio_packet_t *p, unsigned attachments)
{
    const char *name = json_string_value(json_array_get(p->data, 0));
    json_t *args = json_array();
    for (size_t i = 1; i < json_array_size(p->data); i++)
        json_array_append(args, json_array_get(p->data, i));
    int sent = 0;
    if (name != NULL && strcmp(name, "message") == 0) {
        json_array_insert_new(args, 0, json_string("message-back"));
        send_packet(c, attachments != 0 ? AG_SIO_BINARY_EVENT : AG_SIO_EVENT, attachments, p, -1, args);
        sent = 1;
    } else if (name != NULL && strcmp(name, "message-with-ack") == 0 && p->id >= 0) {
        send_packet(c, attachments != 0 ? AG_SIO_BINARY_ACK : AG_SIO_ACK, attachments, p, p->id, args);
        sent = 1;
    }
    json_decref(args);
    for (unsigned i = 0; i < attachments; i++) {
        if (sent)
            ag__eio_send_message(c->session, c->attachments[i]);
        ag_frame_release(c->attachments[i]);
        c->attachments[i] = NULL;
    }
}

static void conf_on_message(void *self, const char *data, size_t len, int binary)
{
    conf_t *c = self;
    if (c->has_pending) {
        if (!binary) {
            fail(c, "text while attachments were due");
            return;
        }
        if ((c->attachments[c->got] = ag_frame_create(data, len, 1)) == NULL) {
            fail(c, "out of memory");
            return;
        }
        if (++c->got < c->pending.attachments)
            return;
        c->has_pending = 0;
        c->got = 0;
        on_event(c, &c->pending, c->pending.attachments);
        ag_sio_packet_dispose(&c->pending);
        return;
    }
    ag_sio_packet_t p;
    if (binary || ag_sio_decode(data, len, &p) != 0) {
        fail(c, binary ? "an attachment nobody announced" : "parse error");
        return;
    }
    int bit = nsp_bit(&p);
    int connected = bit != 0 && (c->connected & (unsigned)bit);
    switch (p.type) {
    case AG_SIO_CONNECT:
        on_connect(c, &p);
        break;
    case AG_SIO_DISCONNECT:
        if (!connected) {
            fail(c, "DISCONNECT from a namespace that is not connected");
            break;
        }
        c->connected &= ~(unsigned)bit;
        break;
    case AG_SIO_EVENT:
    case AG_SIO_BINARY_EVENT:
        if (!connected) {
            fail(c, "EVENT for a namespace that is not connected");
        } else if (p.type == AG_SIO_EVENT) {
            on_event(c, &p, 0);
        } else if (p.attachments > MAX_ATTACHMENTS) {
            fail(c, "too many attachments");
        } else {
            c->pending = p;
            c->has_pending = 1;
            p.data = NULL; /* the pending packet owns it now */
            /* the namespace pointed into this message; it is one of the two connected ones */
            c->pending.nsp = bit == 1 ? "/" : "/custom";
            c->pending.nsp_len = strlen(c->pending.nsp);
        }
        break;
    default:
        break; /* the reference server asks for no acks; CONNECT_ERROR is the server's */
    }
    ag_sio_packet_dispose(&p);
}

static size_t conf_queued(void *self)
{
    (void)self;
    return 0; /* what it sends waits in the session's outbox */
}

static ag_frame_t *conf_shift(void *self)
{
    (void)self;
    return NULL;
}

static int conf_note_backlog(void *self, size_t bytes, size_t frames)
{
    (void)self;
    (void)bytes;
    (void)frames;
    return AG__EIO_UPPER_DEFAULT; /* the session's slow-consumer rule and its own bucket apply */
}

static int conf_inbound(void *self, const ag_eio_packet_t *pkt)
{
    (void)self;
    (void)pkt;
    return AG__EIO_UPPER_DEFAULT;
}

static void conf_on_stop(void *self, ag__eio_session_t *s)
{
    (void)self;
    ag__eio_session_close(s, &AG_DISCONNECT_SHUTDOWN_FINAL, 1);
}

static void conf_on_gone(void *self, const ag_disconnect_t *why)
{
    (void)why;
    conf_t *c = self;
    if (h2o_timeout_is_linked(&c->connect_timer))
        h2o_timeout_unlink(&c->connect_timer);
    if (c->has_pending)
        ag_sio_packet_dispose(&c->pending);
    for (unsigned i = 0; i < c->got; i++)
        ag_frame_release(c->attachments[i]);
    free(c);
}

static const ag__eio_upper_t conf_upper = {
    conf_on_message, conf_queued, conf_shift, conf_note_backlog, conf_inbound, NULL, NULL, conf_on_stop, conf_on_gone,
};

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    conf_t *c = H2O_STRUCT_FROM_MEMBER(conf_t, connect_timer, entry);
    ag__eio_session_close_self(c->session, &AG_DISCONNECT_PROTOCOL_ERROR);
}

void ag__sio_attach_conformance(ag__eio_session_t *s, const ag_conn_info_t *info)
{
    (void)info;
    conf_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->session = s;
    c->connect_timer.cb = on_connect_timeout;
    ag__sio_connect_timer_link(s->server, &c->connect_timer);
    s->upper = &conf_upper;
    s->upper_self = c;
}
