/* The socket.io layer (transports/socketio.c) over a fake engine.io session, on a real node and session layer: which
 * packets it answers with, byte for byte, and when it asks its session to close. */
#include "session_fixture.h"
#include "socketio.h"
#include "rooms.h"

static ag_server_t *srv;

typedef struct {
    int pending, closes;
} lower_t;

static void lower_pending(void *self)
{
    ((lower_t *)self)->pending++;
}

static void lower_close(void *self)
{
    ((lower_t *)self)->closes++;
}

static const ag_sio_lower_t fake_lower = {lower_pending, lower_close};

static int setup(void **state)
{
    srv = fixture_server("general:\n  welcomeMessage: \"hi\"\n  startingChatRooms: [\"r1\", \"r2\"]\n"
                         "servers:\n  websocket:\n    server:\n      queueMaxFrames: 16\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

static ag_sio_t *open_sio(lower_t *l, const char *fingerprint)
{
    ag_conn_info_t info = {fingerprint, "127.0.0.1", 4242, "polling", 0, NULL, NULL, NULL, NULL};
    ag_sio_t *sio = ag_sio_create(srv, &fake_lower, l, &info);
    assert_non_null(sio);
    return sio;
}

/* Sends text, then lets the loop deliver what the store published. */
static void send_packet(ag_sio_t *sio, const char *text)
{
    ag_sio_on_message(sio, text, strlen(text), 0);
    fixture_settle(srv);
}

/* The next packet's text (malloc'ed), or NULL. */
static char *next(ag_sio_t *sio)
{
    ag_frame_t *f = ag_sio_shift(sio);
    if (f == NULL)
        return NULL;
    char *s = strndup(f->data, f->len);
    ag_frame_release(f);
    return s;
}

/* Pushes obj (a new reference, released here) to the connection id. */
static void push(const char *id, json_t *obj)
{
    assert_int_equal(ag_push_conn(srv, id, obj), 0);
    json_decref(obj);
}

/* CONNECTs and returns the connection id (copied into id). */
static void connect_main(ag_sio_t *sio, char id[37])
{
    send_packet(sio, "0");
    char *c = next(sio);
    assert_non_null(c);
    assert_int_equal(strlen(c), sizeof("0{\"sid\":\"\"}") - 1 + 36);
    memcpy(id, c + 9, 36);
    id[36] = '\0';
    assert_non_null(ag_conn_find(srv, id));
    free(c);
    assert_json_text(next(sio), "2[\"welcome\",{\"welcome\":\"hi\",\"context\":\"api\"}]");
}

static void test_connect_then_welcome(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, "fp-1");
    assert_null(next(sio));
    assert_int_equal(ag_sio_queued(sio), 0);
    char id[37];
    connect_main(sio, id);
    assert_true(l.pending >= 1);
    assert_null(next(sio));
    /* the fingerprint of the engine.io handshake, and the engine.io transport's name */
    ag_conn_t *c = ag_conn_find(srv, id);
    assert_string_equal(c->fingerprint, "fp-1");
    assert_string_equal(c->transport_name, "polling");
    ag_sio_set_transport_name(sio, "websocket");
    assert_string_equal(c->transport_name, "websocket");
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
    assert_null(ag_conn_find(srv, id));
    assert_int_equal(l.closes, 0);
}

static void test_events_and_acks(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    char id[37];
    connect_main(sio, id);
    /* without an ack id: a "response" event carrying the session layer's reply */
    send_packet(sio, "2[\"action\",{\"action\":\"noSuchAction\"}]");
    assert_json_text(
        next(sio), "2[\"response\",{\"error\":\"unknown action or invalid apiVersion\",\"context\":\"response\",\"messageId\":1}]");
    /* with one: the ACK */
    send_packet(sio, "25[\"roomChange\",{\"room\":\"r1\"}]");
    assert_json_text(next(sio), "35[{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":2}]");
    /* say to the current room: the ACK first, then the chat (the sender is a member), as on Redis and actionhero */
    send_packet(sio, "26[\"say\",\"hello\"]");
    assert_json_text(next(sio), "36[{\"status\":\"OK\",\"context\":\"response\",\"messageId\":3}]");
    char *chat = next(sio);
    char want[256];
    snprintf(want, sizeof(want),
             "2[\"say\",{\"message\":\"hello\",\"room\":\"r1\",\"from\":\"%s\",\"context\":\"user\",\"sentAt\":", id);
    assert_non_null(chat);
    assert_memory_equal(chat, want, strlen(want));
    free(chat);
    /* roomChange again: the leave the layer makes is answered to nobody */
    send_packet(sio, "2[\"roomChange\",\"r2\"]");
    assert_json_text(next(sio), "2[\"response\",{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":5}]");
    assert_null(next(sio));
    ag_conn_t *c = ag_conn_find(srv, id);
    assert_int_equal(c->num_rooms, 1);
    assert_string_equal(ag__conn_first_room(c), "r2");
    /* roomView without a room: the current one */
    send_packet(sio, "27[\"roomView\"]");
    char *view = next(sio);
    assert_non_null(view);
    assert_non_null(strstr(view, "\"room\":\"r2\""));
    assert_memory_equal(view, "37[{\"status\":\"OK\"", 16);
    free(view);
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

static void test_pushes_are_named_by_context(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    char id[37];
    connect_main(sio, id);
    push(id, json_pack("{s:s}", "msg", "a"));
    assert_json_text(next(sio), "2[\"api\",{\"msg\":\"a\",\"context\":\"api\"}]");
    push(id, json_pack("{s:s,s:s}", "msg", "b", "context", "alert"));
    assert_json_text(next(sio), "2[\"alert\",{\"msg\":\"b\",\"context\":\"alert\"}]");
    /* a name socket.io-client would refuse, and a reply nobody asked for */
    push(id, json_pack("{s:s,s:s}", "msg", "c", "context", "disconnect"));
    assert_json_text(next(sio), "2[\"message\",{\"msg\":\"c\",\"context\":\"disconnect\"}]");
    push(id, json_pack("{s:s,s:s,s:i}", "msg", "d", "context", "response", "messageId", 999));
    assert_json_text(next(sio), "2[\"response\",{\"msg\":\"d\",\"context\":\"response\",\"messageId\":999}]");
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

static void test_quit_sends_disconnect_then_closes(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    char id[37];
    connect_main(sio, id);
    assert_false(ag_sio_closing(sio));
    send_packet(sio, "2[\"quit\"]");
    assert_int_equal(l.closes, 1);
    assert_true(ag_sio_closing(sio));
    assert_json_text(next(sio), "1");
    assert_null(next(sio));
    assert_int_equal(ag_sio_queued(sio), 0);
    /* nothing more is taken while closing */
    send_packet(sio, "2[\"detailsView\"]");
    assert_null(next(sio));
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
    assert_null(ag_conn_find(srv, id));
}

static void test_disconnect_then_connect_again(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    char first[37], second[37];
    connect_main(sio, first);
    send_packet(sio, "2[\"roomChange\",\"r1\"]");
    assert_json_text(next(sio), "2[\"response\",{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}]");
    send_packet(sio, "1");
    assert_null(ag_conn_find(srv, first));
    assert_null(next(sio));
    connect_main(sio, second);
    assert_string_not_equal(first, second);
    /* the new connection starts in no room */
    assert_int_equal(ag_conn_find(srv, second)->num_rooms, 0);
    assert_int_equal(l.closes, 0);
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

static void test_bad_packets_close(void **state)
{
    static const char *const bad[][2] = {
        {"2[\"detailsView\"]", NULL},                           /* EVENT before CONNECT */
        {"0", "2[\"detailsView\""},                             /* does not decode */
        {"0", "0"},                                             /* CONNECT twice */
        {"0", "517-[\"x\",{\"_placeholder\":true,\"num\":0}]"}, /* more attachments than the bound */
        {"51-[\"x\",{\"_placeholder\":true,\"num\":0}]", NULL}, /* binary EVENT before CONNECT */
        {"1", NULL},                                            /* DISCONNECT before CONNECT */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lower_t l = {0, 0};
        ag_sio_t *sio = open_sio(&l, NULL);
        for (int k = 0; k < 2 && bad[i][k] != NULL; k++)
            send_packet(sio, bad[i][k]);
        if (l.closes != 1)
            fail_msg("case %zu: %d closes", i, l.closes);
        assert_true(ag_sio_closing(sio));
        ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
    }
    /* text while attachments are due */
    {
        lower_t l = {0, 0};
        ag_sio_t *sio = open_sio(&l, NULL);
        char id[37];
        connect_main(sio, id);
        send_packet(sio, "51-[\"x\",{\"_placeholder\":true,\"num\":0}]");
        send_packet(sio, "2[\"detailsView\"]");
        assert_int_equal(l.closes, 1);
        ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
    }
    /* an attachment nobody announced */
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    ag_sio_on_message(sio, "\x01\x02", 2, 1);
    assert_int_equal(l.closes, 1);
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

/* Binary packets are refused once their attachments are read; the connection stays. */
static void test_binary_refused(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    char id[37];
    connect_main(sio, id);
    static const char refusal[] = "{\"error\":\"binary events are not served\",\"context\":\"response\"}";
    char want[128];
    send_packet(sio, "52-7[\"x\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    ag_sio_on_message(sio, "\x01", 1, 1);
    assert_null(next(sio)); /* not before the packet is whole */
    ag_sio_on_message(sio, "\x02", 1, 1);
    snprintf(want, sizeof(want), "37[%s]", refusal);
    assert_json_text(next(sio), want);
    send_packet(sio, "61-0[{\"_placeholder\":true,\"num\":0}]");
    ag_sio_on_message(sio, "", 0, 1);
    snprintf(want, sizeof(want), "2[\"response\",%s]", refusal);
    assert_json_text(next(sio), want);
    assert_int_equal(l.closes, 0);
    assert_non_null(ag_conn_find(srv, id));
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

static void test_other_namespace(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    send_packet(sio, "0/admin,{\"token\":1}");
    assert_json_text(next(sio), "4/admin,{\"message\":\"Invalid namespace\"}");
    assert_int_equal(l.closes, 0);
    char id[37];
    connect_main(sio, id);
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

static void test_broadcast_reaches_every_member(void **state)
{
    lower_t la = {0, 0}, lb = {0, 0};
    ag_sio_t *a = open_sio(&la, NULL), *b = open_sio(&lb, NULL);
    char ida[37], idb[37];
    connect_main(a, ida);
    connect_main(b, idb);
    send_packet(a, "21[\"roomChange\",\"r1\"]");
    assert_json_text(next(a), "31[{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}]");
    send_packet(b, "21[\"roomChange\",\"r1\"]");
    assert_json_text(next(b), "31[{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}]");
    /* each one's own reply first; one frame for the room, the same packet for both */
    send_packet(a, "2[\"say\",{\"message\":\"one\"}]");
    send_packet(b, "27[\"say\",{\"message\":\"two\"}]");
    char *a1 = next(a), *a2 = next(a), *a3 = next(a), *b1 = next(b), *b2 = next(b), *b3 = next(b);
    assert_json_text(a1, "2[\"response\",{\"status\":\"OK\",\"context\":\"response\",\"messageId\":2}]");
    assert_non_null(a2);
    assert_non_null(b1);
    assert_string_equal(a2, b1);
    assert_non_null(strstr(a2, "\"message\":\"one\""));
    assert_json_text(b2, "37[{\"status\":\"OK\",\"context\":\"response\",\"messageId\":2}]");
    assert_non_null(a3);
    assert_non_null(b3);
    assert_string_equal(a3, b3);
    assert_non_null(strstr(a3, "\"message\":\"two\""));
    free(a2);
    free(a3);
    free(b1);
    free(b3);
    ag_sio_on_gone(a, &AG_DISCONNECT_PEER_CLOSED);
    ag_sio_on_gone(b, &AG_DISCONNECT_PEER_CLOSED);
}

static void test_slow_consumer_is_bounded(void **state)
{
    lower_t l = {0, 0};
    ag_sio_t *sio = open_sio(&l, NULL);
    char id[37];
    connect_main(sio, id);
    /* nothing is pulled: the connection's queue bound (16 frames here) ends it */
    for (int i = 0; i < 20; i++) {
        json_t *o = json_pack("{s:i}", "n", i);
        int ret = ag_push_conn(srv, id, o);
        json_decref(o);
        /* the 17th is refused and closes the connection; after that it is gone */
        assert_int_equal(ret, i < 16 ? 0 : i == 16 ? AG_EBUSY : AG_ENOENT);
    }
    assert_int_equal(l.closes, 1);
    /* what was queued is still handed over (translated) before the session closes, without a DISCONNECT: the client
     * may come back */
    int n = 0;
    char *p, *last = NULL;
    while ((p = next(sio)) != NULL) {
        free(last);
        last = p;
        n++;
    }
    assert_int_equal(n, 16);
    assert_json_text(last, "2[\"api\",{\"n\":15,\"context\":\"api\"}]");
    ag_sio_on_gone(sio, &AG_DISCONNECT_PEER_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_then_welcome),
        cmocka_unit_test(test_events_and_acks),
        cmocka_unit_test(test_pushes_are_named_by_context),
        cmocka_unit_test(test_quit_sends_disconnect_then_closes),
        cmocka_unit_test(test_disconnect_then_connect_again),
        cmocka_unit_test(test_bad_packets_close),
        cmocka_unit_test(test_binary_refused),
        cmocka_unit_test(test_other_namespace),
        cmocka_unit_test(test_broadcast_reaches_every_member),
        cmocka_unit_test(test_slow_consumer_is_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
