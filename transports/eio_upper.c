/*
 * Two uppers of an engine.io session (eio.h, ag__eio_upper_t): the logical connection (whose ag_transport_t the
 * session is) and echo. The socket.io layer is the third, in socketio.c.
 */
#include "eio.h"

/* --- the logical connection --- */

static void conn_on_pending(ag_conn_t *conn, void *self)
{
    (void)conn;
    ag__eio_on_writable(self);
}

static void conn_close(ag_conn_t *conn, void *self, const ag_disconnect_t *why)
{
    (void)conn;
    /* The close packet means "closed on purpose, do not come back" (actiongate's client takes it so, like Primus's
     * "primus::server::close"); a close the client should recover from (shutdown without destroyClientsOnShutdown,
     * slow consumer) only ends the transport: a held GET gets a noop, then "Session ID unknown", and it reconnects. */
    ag__eio_session_close(self, why, !why->reconnect);
}

static void conn_rebind(ag_conn_t *to, void *self)
{
    ((ag__eio_session_t *)self)->upper_self = to;
}

static const ag_transport_t conn_transport = {"websocket", conn_on_pending, conn_close, "engine.io", conn_rebind};

static void conn_on_message(void *self, const char *data, size_t len, int binary)
{
    ag_conn_on_frame(self, data, len, binary);
}

static size_t conn_queued(void *self)
{
    return ag_conn_queued(self);
}

static ag_frame_t *conn_shift(void *self)
{
    return ag_conn_shift(self);
}

static int conn_note_backlog(void *self, size_t bytes, size_t frames)
{
    return ag_conn_note_backlog(self, bytes, frames) == AG_EBUSY ? AG_EBUSY : AG_OK;
}

/* Messages count in ag_conn_on_frame (a refusal is an error reply), everything else in the connection's bucket. */
static int conn_inbound(void *self, const ag_eio_packet_t *pkt)
{
    if (pkt != NULL && pkt->type == AG_EIO_MESSAGE)
        return 1;
    return ag_conn_inbound_control(self);
}

static void conn_set_transport_name(void *self, const char *name)
{
    ag_conn_set_transport_name(self, name);
}

static void conn_on_gone(void *self, const ag_disconnect_t *why)
{
    ag_conn_on_transport_gone(self, why);
}

static const ag__eio_upper_t conn_upper = {
    conn_on_message, conn_queued, conn_shift, conn_note_backlog, conn_inbound, conn_set_transport_name, NULL, NULL, conn_on_gone,
};

void ag__eio_attach_conn(ag__eio_session_t *s, const ag_conn_info_t *info)
{
    ag_conn_t *c = ag_conn_create(s->server, &conn_transport, s, info);
    if (c == NULL)
        return;
    s->upper = &conn_upper;
    s->upper_self = c;
}

/* --- echo: every message goes back unchanged; no connection, no welcome --- */

static void echo_on_message(void *self, const char *data, size_t len, int binary)
{
    ag_frame_t *f = ag_frame_create(data, len, binary);
    if (f == NULL)
        return;
    ag__eio_send_message(self, f);
    ag_frame_release(f);
}

static size_t echo_queued(void *self)
{
    (void)self;
    return 0; /* what it sends waits in the session's outbox */
}

static ag_frame_t *echo_shift(void *self)
{
    (void)self;
    return NULL;
}

/* The session's slow-consumer rule and its own bucket apply: echo is the session itself. */
static int echo_note_backlog(void *self, size_t bytes, size_t frames)
{
    (void)self;
    (void)bytes;
    (void)frames;
    return AG__EIO_UPPER_DEFAULT;
}

static int echo_inbound(void *self, const ag_eio_packet_t *pkt)
{
    (void)self;
    (void)pkt;
    return AG__EIO_UPPER_DEFAULT;
}

/* Echo has no connection the server could close: the session is closed for good here. */
static void echo_on_stop(void *self, ag__eio_session_t *s)
{
    (void)self;
    ag__eio_session_close(s, &AG_DISCONNECT_SHUTDOWN_FINAL, 1);
}

static void echo_on_gone(void *self, const ag_disconnect_t *why)
{
    (void)self;
    (void)why;
}

static const ag__eio_upper_t echo_upper = {
    echo_on_message, echo_queued, echo_shift, echo_note_backlog, echo_inbound, NULL, NULL, echo_on_stop, echo_on_gone,
};

void ag__eio_attach_echo(ag__eio_session_t *s, const ag_conn_info_t *info)
{
    (void)info;
    s->upper = &echo_upper;
    s->upper_self = s;
}
