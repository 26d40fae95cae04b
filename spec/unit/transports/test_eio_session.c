/*
 * The engine.io session's upgrade and heartbeat state machine (transports/eio.c), driven without a socket: a real node
 * from ag_server_create (it never listens), fake transports behind the session's transport vtable and a fake upper
 * behind ag__eio_upper_t. Timers run on the node's own loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "actiongate.h"
#include "eio.h"
#include "server.h"

/* --- a fake transport: writable while open, records what it was sent --- */

typedef struct {
    ag__eio_transport_t super;
    ag__eio_transport_ops_t ops;
    int closed;
    uint8_t types[64];
    char text[64][8];
    size_t n;
} fake_tr_t;

static int tr_writable(ag__eio_transport_t *t)
{
    return !((fake_tr_t *)t)->closed;
}

static void tr_send(ag__eio_transport_t *t, const ag__eio_out_t *pkts, size_t n)
{
    fake_tr_t *f = (fake_tr_t *)t;
    for (size_t i = 0; i < n && f->n < 64; i++, f->n++) {
        f->types[f->n] = pkts[i].type;
        snprintf(f->text[f->n], sizeof(f->text[f->n]), "%s", pkts[i].text != NULL ? pkts[i].text : "");
    }
}

static void tr_close(ag__eio_transport_t *t)
{
    ((fake_tr_t *)t)->closed = 1;
}

static void fake_tr_init(fake_tr_t *f, ag__eio_session_t *s, ag__eio_kind_t kind, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->ops = (ag__eio_transport_ops_t){kind, name, tr_writable, tr_send, tr_close};
    f->super.ops = &f->ops;
    f->super.session = s;
}

static int sent(const fake_tr_t *f, uint8_t type)
{
    int n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->types[i] == type;
    return n;
}

/* --- a fake upper: records messages, the transport name and why the session went --- */

typedef struct {
    int messages;
    const char *transport;
    int closing;
    const ag_disconnect_t *gone;
} fake_up_t;

static void up_on_message(void *self, const char *data, size_t len, int binary)
{
    (void)data;
    (void)len;
    (void)binary;
    ((fake_up_t *)self)->messages++;
}

static size_t up_queued(void *self)
{
    (void)self;
    return 0;
}

static ag_frame_t *up_shift(void *self)
{
    (void)self;
    return NULL;
}

static int up_default(void *self, size_t bytes, size_t frames)
{
    (void)self;
    (void)bytes;
    (void)frames;
    return AG__EIO_UPPER_DEFAULT;
}

static int up_inbound(void *self, const ag_eio_packet_t *pkt)
{
    (void)self;
    (void)pkt;
    return 1;
}

static void up_set_transport_name(void *self, const char *name)
{
    ((fake_up_t *)self)->transport = name;
}

static int up_closing(void *self)
{
    return ((fake_up_t *)self)->closing;
}

static void up_on_gone(void *self, const ag_disconnect_t *why)
{
    ((fake_up_t *)self)->gone = why;
}

static const ag__eio_upper_t fake_upper = {
    up_on_message, up_queued, up_shift, up_default, up_inbound, up_set_transport_name, up_closing, NULL, up_on_gone,
};

/* --- the node and a session on it --- */

static ag_server_t *node(int ping_interval, int ping_timeout)
{
    char err[256];
    ag_log_threshold = AG_LOG_NONE;
    ag_config_t *cfg = ag_config_create_default();
    assert_non_null(cfg);
    cfg->servers.websocket.server.pingInterval = ping_interval;
    cfg->servers.websocket.server.pingTimeout = ping_timeout;
    ag_server_t *s = ag_server_create(cfg, err, sizeof(err));
    if (s == NULL)
        fail_msg("%s", err);
    return s;
}

static ag__eio_session_t *session(ag_server_t *srv, fake_up_t *up, fake_tr_t *polling)
{
    ag__eio_session_t *s = ag__eio_session_new(srv, 1);
    assert_non_null(s);
    s->upper = &fake_upper;
    s->upper_self = up;
    fake_tr_init(polling, s, AG__EIO_POLLING, "polling");
    ag__eio_session_start(s, &polling->super);
    return s;
}

static void packet(ag__eio_session_t *s, fake_tr_t *t, uint8_t type, const char *data)
{
    ag_eio_packet_t pkt = {type, data, strlen(data), 0};
    ag__eio_on_packet(s, &t->super, &pkt);
}

/* The session ends and the upper hears why (from the loop). */
static void end(ag_server_t *srv, ag__eio_session_t *s, fake_up_t *up)
{
    ag__eio_session_close(s, &AG_DISCONNECT_PEER_CLOSED, 0);
    int gone = 0;
    for (int i = 0; i < 400 && !gone; i++) {
        h2o_evloop_run(srv->loop, 10);
        gone = up->gone != NULL;
    }
    assert_non_null(up->gone);
}

static void test_upgrade_to_the_probe(void **state)
{
    (void)state;
    ag_server_t *srv = node(25000, 20000);
    fake_up_t up = {0};
    fake_tr_t polling, ws;
    ag__eio_session_t *s = session(srv, &up, &polling);
    fake_tr_init(&ws, s, AG__EIO_WEBSOCKET, "websocket");
    ag__eio_probe_start(s, &ws.super);

    packet(s, &ws, AG_EIO_PING, "probe");
    assert_int_equal(ws.n, 1);
    assert_int_equal(ws.types[0], AG_EIO_PONG);
    assert_string_equal(ws.text[0], "probe");
    assert_ptr_equal(s->transport, &polling.super); /* not yet: the client still has to say "5" */

    packet(s, &ws, AG_EIO_UPGRADE, "");
    assert_ptr_equal(s->transport, &ws.super);
    assert_null(s->probe);
    assert_true(s->upgraded);
    assert_true(polling.closed);
    assert_false(ws.closed);
    assert_string_equal(up.transport, "websocket");

    packet(s, &polling, AG_EIO_MESSAGE, "late poll"); /* the old transport is not listened to any more */
    assert_int_equal(up.messages, 0);
    packet(s, &ws, AG_EIO_MESSAGE, "hello");
    assert_int_equal(up.messages, 1);

    end(srv, s, &up);
    assert_ptr_equal(up.gone, &AG_DISCONNECT_PEER_CLOSED);
    ag_server_destroy(srv);
}

static void test_a_probe_that_says_something_else_is_closed(void **state)
{
    (void)state;
    ag_server_t *srv = node(25000, 20000);
    fake_up_t up = {0};
    fake_tr_t polling, ws;
    ag__eio_session_t *s = session(srv, &up, &polling);
    fake_tr_init(&ws, s, AG__EIO_WEBSOCKET, "websocket");
    ag__eio_probe_start(s, &ws.super);

    packet(s, &ws, AG_EIO_PING, "probe");
    packet(s, &ws, AG_EIO_MESSAGE, "on the probe"); /* a probe carries no messages: it is closed */
    assert_int_equal(up.messages, 0);
    assert_true(ws.closed);
    assert_null(s->probe);
    assert_ptr_equal(s->transport, &polling.super);
    assert_false(s->upgraded);
    assert_null(up.transport);
    assert_false(s->closed); /* the session goes on polling */

    end(srv, s, &up);
    ag_server_destroy(srv);
}

static void test_pings_and_the_pong_deadline(void **state)
{
    (void)state;
    ag_server_t *srv = node(20, 40);
    fake_up_t up = {0};
    fake_tr_t polling;
    ag__eio_session_t *s = session(srv, &up, &polling);

    /* a pong in time keeps the session; the next ping follows */
    int pinged = 0;
    for (int i = 0; i < 400 && !pinged; i++) {
        h2o_evloop_run(srv->loop, 10);
        pinged = sent(&polling, AG_EIO_PING) >= 1;
    }
    assert_true(pinged);
    packet(s, &polling, AG_EIO_PONG, "");
    assert_false(s->closed);
    pinged = 0;
    for (int i = 0; i < 400 && !pinged; i++) {
        h2o_evloop_run(srv->loop, 10);
        pinged = sent(&polling, AG_EIO_PING) >= 2;
    }
    assert_true(pinged);
    assert_false(s->closed);
    packet(s, &polling, AG_EIO_PONG, "");
    /* pongs in time, ping after ping: the session outlives several pong deadlines */
    for (int round = 3; round <= 6; round++) {
        pinged = 0;
        for (int i = 0; i < 400 && !pinged && !s->closed; i++) {
            h2o_evloop_run(srv->loop, 10);
            pinged = sent(&polling, AG_EIO_PING) >= round;
        }
        assert_false(s->closed);
        assert_true(pinged);
        packet(s, &polling, AG_EIO_PONG, "");
    }

    /* no pong: the session closes for the heartbeat, the close packet goes out first, and the upper learns why */
    int gone = 0;
    for (int i = 0; i < 400 && !gone; i++) {
        h2o_evloop_run(srv->loop, 10);
        gone = up.gone != NULL;
    }
    assert_ptr_equal(up.gone, &AG_DISCONNECT_HEARTBEAT);
    assert_int_equal(sent(&polling, AG_EIO_CLOSE), 1);
    assert_true(polling.closed);
    ag_server_destroy(srv);
}

static void test_a_ping_from_the_client_is_a_protocol_error(void **state)
{
    (void)state;
    ag_server_t *srv = node(25000, 20000);
    fake_up_t up = {0};
    fake_tr_t polling;
    ag__eio_session_t *s = session(srv, &up, &polling);
    packet(s, &polling, AG_EIO_PING, "");
    assert_true(s->closed);
    int gone = 0;
    for (int i = 0; i < 400 && !gone; i++) {
        h2o_evloop_run(srv->loop, 10);
        gone = up.gone != NULL;
    }
    assert_ptr_equal(up.gone, &AG_DISCONNECT_PROTOCOL_ERROR);
    ag_server_destroy(srv);
}

/* An upper that asked to close (socket.io after its DISCONNECT) has the session closed once nothing is left to send. */
static void test_an_upper_that_is_closing(void **state)
{
    (void)state;
    ag_server_t *srv = node(25000, 20000);
    fake_up_t up = {0};
    fake_tr_t polling;
    ag__eio_session_t *s = session(srv, &up, &polling);
    ag__eio_on_writable(s);
    assert_false(s->closed);
    up.closing = 1;
    ag__eio_on_writable(s);
    assert_true(s->closed);
    assert_int_equal(sent(&polling, AG_EIO_CLOSE), 1);
    int gone = 0;
    for (int i = 0; i < 400 && !gone; i++) {
        h2o_evloop_run(srv->loop, 10);
        gone = up.gone != NULL;
    }
    assert_ptr_equal(up.gone, &AG_DISCONNECT_SERVER);
    ag_server_destroy(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_to_the_probe),        cmocka_unit_test(test_a_probe_that_says_something_else_is_closed),
        cmocka_unit_test(test_pings_and_the_pong_deadline), cmocka_unit_test(test_a_ping_from_the_client_is_a_protocol_error),
        cmocka_unit_test(test_an_upper_that_is_closing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
