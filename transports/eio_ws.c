/*
 * engine.io over WebSocket (PROTOCOL.md §4): one packet per message; text packets in text frames, binary messages as
 * raw binary frames (or "b<base64>" text with ?b64=1). Used for the handshake (transport=websocket without sid) and as
 * the upgrade probe of a polling session.
 */
#include "eio.h"

#include <stdlib.h>
#include <string.h>
#include "ws.h"

typedef struct st_eio_ws_t {
    ag__eio_transport_t super;
    ag_ws_t *ws;
    int closed;
} eio_ws_t;

static int ws_writable(ag__eio_transport_t *t)
{
    eio_ws_t *w = (eio_ws_t *)t;
    return !w->closed && w->ws != NULL && !ag_ws_is_closing(w->ws);
}

static void send_one(eio_ws_t *w, const ag__eio_out_t *pkt)
{
    ag__eio_session_t *s = w->super.session;
    const char *d = pkt->frame != NULL ? pkt->frame->data : pkt->text;
    size_t len = pkt->frame != NULL ? pkt->frame->len : d != NULL ? strlen(d) : 0;
    int binary = pkt->frame != NULL && pkt->frame->binary;
    ag_eio_buf_t b = {NULL, 0, 0};
    if (binary && !s->b64 && s->protocol == 3) {
        /* protocol 3's binary frame starts with its packet type as a byte */
        uint8_t type = AG_EIO_MESSAGE;
        if (ag_eio_buf_append(&b, &type, 1) == AG_OK && ag_eio_buf_append(&b, d, len) == AG_OK)
            ag_ws_send(w->ws, b.base, b.len, 1);
    } else if (binary && !s->b64) {
        ag_ws_send(w->ws, d, len, 1);
    } else if (binary && s->protocol == 3) {
        if (ag_eio3_payload_append(&b, pkt->type, d, len, 1) == AG_OK) {
            const char *colon = memchr(b.base, ':', b.len); /* a frame is one packet: no length */
            ag_ws_send(w->ws, colon + 1, b.len - (size_t)(colon + 1 - b.base), 0);
        }
    } else if (ag_eio_payload_append(&b, pkt->type, d, len, binary) == AG_OK) {
        ag_ws_send(w->ws, b.base, b.len, 0);
    }
    ag_eio_buf_dispose(&b);
}

static void ws_send(ag__eio_transport_t *t, const ag__eio_out_t *pkts, size_t n)
{
    eio_ws_t *w = (eio_ws_t *)t;
    if (!ws_writable(t))
        return;
    for (size_t i = 0; i < n; i++)
        send_one(w, &pkts[i]);
    /* what the socket has not taken yet is the consumer's backlog */
    ag__eio_note_backlog(t->session, ag_ws_queued_bytes(w->ws), ag_ws_queued_count(w->ws));
}

static void ws_close(ag__eio_transport_t *t)
{
    eio_ws_t *w = (eio_ws_t *)t;
    if (w->closed)
        return;
    w->closed = 1;
    if (w->ws != NULL)
        ag_ws_close(w->ws, 0, ""); /* engine.io closes without a status code */
}

static const ag__eio_transport_ops_t ws_ops = {AG__EIO_WEBSOCKET, "websocket", ws_writable, ws_send, ws_close};

static void on_message(ag_ws_t *ws, const uint8_t *data, size_t len, int binary)
{
    eio_ws_t *w = ws->data;
    ag__eio_session_t *s = w->super.session;
    if (w->closed)
        return;
    ag_eio_packet_t pkt;
    if (binary && s->protocol == 3) {
        /* the type byte first; only a message carries binary */
        if (len == 0 || data[0] != AG_EIO_MESSAGE) {
            if (&w->super == s->transport)
                ag__eio_session_close(s, &AG_DISCONNECT_PROTOCOL_ERROR, 0);
            else
                ws_close(&w->super);
            return;
        }
        pkt = (ag_eio_packet_t){AG_EIO_MESSAGE, (const char *)data + 1, len - 1, 1};
        ag__eio_on_packet(s, &w->super, &pkt);
        return;
    }
    if (binary) {
        pkt = (ag_eio_packet_t){AG_EIO_MESSAGE, (const char *)data, len, 1};
        ag__eio_on_packet(s, &w->super, &pkt);
        return;
    }
    char *scratch = malloc(len + 4);
    if (scratch == NULL)
        return;
    ag__eio_session_addref(s);
    if ((s->protocol == 3 ? ag_eio3_packet_decode((const char *)data, len, scratch, &pkt)
                          : ag_eio_packet_decode((const char *)data, len, scratch, &pkt)) != AG_OK) {
        if (&w->super == s->transport)
            ag__eio_session_close(s, &AG_DISCONNECT_PROTOCOL_ERROR, 0);
        else
            ws_close(&w->super);
    } else {
        ag__eio_on_packet(s, &w->super, &pkt);
    }
    ag__eio_session_release(s);
    free(scratch);
}

static void on_closed(ag_ws_t *ws, const ag_disconnect_t *why)
{
    eio_ws_t *w = ws->data;
    ag__eio_session_t *s = w->super.session;
    w->ws = NULL;
    w->closed = 1;
    ag__eio_transport_gone(s, &w->super, why);
    ag__eio_session_release(s);
    free(w);
}

/* A WebSocket PING (wslay answers it) counts against the message rate like any packet. */
static void on_ping(ag_ws_t *ws)
{
    eio_ws_t *w = ws->data;
    if (!w->closed)
        ag__eio_inbound_control(w->super.session);
}

static const ag_ws_callbacks_t callbacks = {on_message, on_ping, on_closed};

void ag__eio_ws_accept(ag_server_t *server, ag__eio_session_t *s, h2o_req_t *req, const char *key)
{
    const ag_config_t *cfg = server->config;
    int handshake = s->transport == NULL && s->polling == NULL && s->sse == NULL;
    int probe =
        !handshake && !s->upgraded && s->probe == NULL && s->transport != NULL && s->transport->ops->kind == AG__EIO_POLLING;
    eio_ws_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return;
    }
    w->super.ops = &ws_ops;
    w->super.session = s;
    ag__eio_add_common_headers(req);
    w->ws = ag_ws_upgrade(req, key, (size_t)cfg->servers.websocket.server.maxHttpBufferSize, &callbacks, w);
    if (w->ws == NULL) {
        free(w);
        return;
    }
    ag__eio_session_addref(s);
    if (handshake) {
        char body[512];
        body[0] = '0';
        size_t n = ag__eio_open_json(s, AG__EIO_WEBSOCKET, 0, body + 1, sizeof(body) - 1);
        ag_ws_send(w->ws, body, n + 1, 0);
        ag__eio_session_start(s, &w->super);
    } else if (probe) {
        ag__eio_probe_start(s, &w->super);
    } else {
        /* a second WebSocket for a session that is upgrading or upgraded: accepted, then closed */
        ws_close(&w->super);
    }
}
