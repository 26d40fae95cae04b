/* Rooms: membership, the local index, shared broadcast frames, hooks, deletion, announcements. */
#include "session_fixture.h"
#include "rooms.h"

static ag_server_t *srv;

static int setup(void **state)
{
    srv = fixture_server("general:\n  startingChatRooms: [\"r1\", \"r2\"]\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

static fake_t *joined(const char *room)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    char msg[256];
    snprintf(msg, sizeof(msg), "{\"event\":\"roomAdd\",\"room\":\"%s\",\"messageId\":1}", room);
    assert_json_text(fixture_ask(f, msg), "{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}");
    return f;
}

static void test_membership_and_index(void **state)
{
    fake_t *a = joined("r1"), *b = joined("r1");
    assert_int_equal(ag__room_local_members(srv, "r1"), 2);
    assert_int_equal(a->conn->num_rooms, 1);
    assert_string_equal(ag__conn_first_room(a->conn), "r1");
    assert_true(ag__conn_in_room(a->conn, "r1"));
    assert_false(ag__conn_in_room(a->conn, "r2"));
    assert_json_text(fixture_ask(a, "{\"event\":\"roomLeave\",\"room\":\"r1\",\"messageId\":2}"),
                     "{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":2}");
    assert_int_equal(ag__room_local_members(srv, "r1"), 1);
    fixture_drop(b); /* closing leaves every room */
    assert_int_equal(ag__room_local_members(srv, "r1"), 0);
    fixture_drop(a);
}

static void test_broadcast_frame_is_shared(void **state)
{
    fake_t *a = joined("r1"), *b = joined("r1"), *c = joined("r2");
    fixture_send(a, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"hello\",\"messageId\":3}");
    ag_frame_t *fa = NULL, *fb = ag_conn_shift(b->conn), *x;
    while ((x = ag_conn_shift(a->conn)) != NULL) {
        if (strstr(x->data, "\"context\":\"user\"") != NULL)
            fa = x;
        else
            ag_frame_release(x);
    }
    assert_non_null(fa);
    assert_ptr_equal(fa, fb); /* encoded once, queued twice */
    json_t *m = json_loadb(fa->data, fa->len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(m, "message")), "hello");
    assert_string_equal(json_string_value(json_object_get(m, "from")), a->conn->id);
    json_decref(m);
    ag_frame_release(fa);
    ag_frame_release(fb);
    assert_null(fixture_next_text(c));
    fixture_drop(a);
    fixture_drop(b);
    fixture_drop(c);
}

static int reject_r2(ag_conn_t *c, const char *room, const char **reject, void *data)
{
    if (strcmp(room, "r2") == 0) {
        *reject = "joining rooms blocked";
        return 1;
    }
    return 0;
}

static json_t *shout(ag_conn_t *sender, const char *room, json_t *payload, void *data)
{
    const char *msg = json_string_value(json_object_get(payload, "message"));
    if (strcmp(msg, "drop") == 0) {
        json_decref(payload);
        return NULL;
    }
    char up[64];
    snprintf(up, sizeof(up), "%s!", msg);
    json_object_set_new(payload, "message", json_string(up));
    return payload;
}

static ag_conn_t *muted;
static json_t *per_recipient(ag_conn_t *recipient, const char *room, json_t *payload, void *data)
{
    if (recipient == muted)
        return NULL;
    json_t *o = json_copy(payload);
    json_object_set_new(o, "to", json_string(recipient->id));
    return o;
}

static int connects, disconnects;
static const ag_disconnect_t *last_why;
static void on_connect(ag_conn_t *c, void *data)
{
    connects++;
}
static void on_disconnect(ag_conn_t *c, const ag_disconnect_t *why, void *data)
{
    disconnects++;
    last_why = why;
}

static void test_hooks(void **state)
{
    ag_hooks_t h = {.on_join = reject_r2, .on_say = shout, .on_connect = on_connect, .on_disconnect = on_disconnect};
    ag_set_hooks(srv, &h);
    fake_t *a = joined("r1");
    assert_json_text(
        fixture_ask(a, "{\"event\":\"roomAdd\",\"room\":\"r2\",\"messageId\":4}"),
        "{\"status\":\"Error: joining rooms blocked\",\"error\":\"Error: joining rooms blocked\",\"context\":\"response\","
        "\"data\":{},\"messageId\":4}");
    fixture_send(a, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"hey\"}");
    json_t *m = NULL, *x;
    while ((x = fixture_next(a)) != NULL) {
        if (json_object_get(x, "message") != NULL)
            m = json_incref(x);
        json_decref(x);
    }
    assert_string_equal(json_string_value(json_object_get(m, "message")), "hey!");
    json_decref(m);
    fixture_send(a, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"drop\",\"messageId\":5}");
    assert_json_text(fixture_next_text(a), "{\"status\":\"OK\",\"context\":\"response\",\"messageId\":5}");
    assert_null(fixture_next_text(a));

    h = (ag_hooks_t){.on_say_recipient = per_recipient};
    ag_set_hooks(srv, &h);
    fake_t *b = joined("r1");
    muted = b->conn;
    fixture_send(a, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"x\",\"messageId\":6}");
    assert_null(fixture_next_text(b));
    json_t *r = fixture_next(a);
    json_t *chat = fixture_next(a);
    if (json_object_get(r, "message") != NULL) {
        json_t *t = r;
        r = chat;
        chat = t;
    }
    assert_string_equal(json_string_value(json_object_get(chat, "to")), a->conn->id);
    json_decref(r);
    json_decref(chat);
    ag_set_hooks(srv, NULL);
    int before = disconnects;
    fixture_drop(a);
    fixture_drop(b);
    assert_int_equal(disconnects, before); /* hooks removed */
    assert_true(connects >= 1);
}

/* The disconnect hook learns why each connection ended: the first reason it got, whatever came after. */
static void test_disconnect_hook_sees_why(void **state)
{
    ag_hooks_t h = {.on_disconnect = on_disconnect};
    ag_set_hooks(srv, &h);

    fake_t *a = fixture_conn(srv, NULL);
    fixture_drop(a); /* the client went away */
    assert_ptr_equal(last_why, &AG_DISCONNECT_PEER_CLOSED);

    fake_t *b = fixture_conn(srv, NULL);
    fixture_send(b, "{\"event\":\"quit\"}");
    assert_true(b->closed);
    fixture_drop(b); /* the transport ends after the close it was asked for */
    assert_ptr_equal(last_why, &AG_DISCONNECT_QUIT);
    assert_int_equal(last_why->reconnect, 0);

    fake_t *c = fixture_conn(srv, NULL);
    ag_frame_t *fr = ag_frame_create("x", 1, 0);
    int sent = 0;
    while (ag_conn_send(c->conn, fr) == 0 && sent < 100000)
        sent++;
    ag_frame_release(fr);
    assert_ptr_equal(c->why, &AG_DISCONNECT_SLOW);
    ag_conn_on_transport_gone(c->conn, &AG_DISCONNECT_TRANSPORT_ERROR);
    free(c);
    assert_ptr_equal(last_why, &AG_DISCONNECT_SLOW);
    assert_string_equal(last_why->reason, "slow consumer");

    fake_t *d = fixture_conn(srv, NULL);
    ag_conn_on_transport_gone(d->conn, &AG_DISCONNECT_HEARTBEAT);
    free(d);
    assert_ptr_equal(last_why, &AG_DISCONNECT_HEARTBEAT);
    ag_set_hooks(srv, NULL);
}

static void test_delete_room(void **state)
{
    assert_int_equal(ag_room_create(srv, "tmp"), 0);
    fake_t *a = joined("tmp"), *b = joined("tmp");
    assert_int_equal(ag_room_delete(srv, "tmp"), 0);
    fixture_settle(srv);
    for (fake_t **f = (fake_t *[]){a, b, NULL}; *f != NULL; f++) {
        json_t *m = fixture_next(*f);
        assert_string_equal(json_string_value(json_object_get(m, "message")), "this room has been deleted");
        assert_string_equal(json_string_value(json_object_get(m, "from")), "0");
        assert_string_equal(json_string_value(json_object_get(m, "room")), "tmp");
        json_decref(m);
        assert_int_equal((*f)->conn->num_rooms, 0);
    }
    assert_int_equal(ag__room_local_members(srv, "tmp"), 0);
    assert_json_text(fixture_ask(a, "{\"event\":\"roomAdd\",\"room\":\"tmp\",\"messageId\":7}"),
                     "{\"status\":\"Error: room does not exist\",\"error\":\"Error: room does not exist\",\"context\":\"response\","
                     "\"data\":{},\"messageId\":7}");
    fixture_drop(a);
    fixture_drop(b);
}

static void test_push_room_and_broadcast(void **state)
{
    fake_t *a = joined("r2");
    json_t *o = json_pack("{s:s}", "news", "flash");
    assert_int_equal(ag_push_room(srv, "r2", o), 0);
    fixture_settle(srv);
    json_decref(o);
    assert_json_text(fixture_next_text(a), "{\"news\":\"flash\",\"context\":\"api\"}");
    ag_room_broadcast(srv, "r2", "from the server");
    fixture_settle(srv);
    json_t *m = fixture_next(a);
    assert_string_equal(json_string_value(json_object_get(m, "from")), "0");
    assert_string_equal(json_string_value(json_object_get(m, "context")), "user");
    json_decref(m);
    fixture_drop(a);
}

static void test_join_api(void **state)
{
    fake_t *a = fixture_conn(srv, NULL);
    fixture_drain(a);
    ag_room_join(a->conn, "r1", NULL, NULL);
    ag_room_join(a->conn, "r2", NULL, NULL);
    assert_int_equal(a->conn->num_rooms, 2);
    ag_room_leave(a->conn, "r1", NULL, NULL);
    assert_int_equal(a->conn->num_rooms, 1);
    assert_string_equal(ag__conn_first_room(a->conn), "r2");
    fixture_drop(a);
}

static size_t user_frames(fake_t *f, const char *message)
{
    size_t n = 0;
    json_t *m;
    while ((m = fixture_next(f)) != NULL) {
        const char *text = json_string_value(json_object_get(m, "message"));
        n += text != NULL && strcmp(text, message) == 0;
        json_decref(m);
    }
    return n;
}

/* Leaving from the middle of a connection's list and of a room's member array keeps both in shape. */
static void test_index_order_and_members(void **state)
{
    assert_int_equal(ag_room_create(srv, "r3"), 0);
    fake_t *a = joined("r1"), *b = joined("r1"), *c = joined("r1");
    ag_room_join(a->conn, "r2", NULL, NULL);
    ag_room_join(a->conn, "r3", NULL, NULL);
    ag_room_leave(a->conn, "r2", NULL, NULL);
    const char *order[3] = {NULL, NULL, NULL};
    size_t n = 0;
    for (const ag_room_member_t *m = a->conn->rooms_first; m != NULL && n < 3; m = ag__room_next(m))
        order[n++] = ag__room_name(m);
    assert_int_equal(n, 2);
    assert_string_equal(order[0], "r1");
    assert_string_equal(order[1], "r3");
    ag_room_leave(b->conn, "r1", NULL, NULL); /* the middle of r1's members */
    assert_int_equal(ag__room_local_members(srv, "r1"), 2);
    assert_false(ag__conn_in_room(b->conn, "r1"));
    fixture_drain(a);
    fixture_drain(b);
    fixture_drain(c);
    ag_room_broadcast(srv, "r1", "to r1");
    fixture_settle(srv);
    assert_int_equal(user_frames(a, "to r1"), 1);
    assert_int_equal(user_frames(b, "to r1"), 0);
    assert_int_equal(user_frames(c, "to r1"), 1);
    fixture_drop(c);
    assert_int_equal(ag__room_local_members(srv, "r1"), 1);
    fixture_drop(a); /* its last rooms: r1 and r3 have no local members left */
    assert_int_equal(ag__room_local_members(srv, "r1"), 0);
    assert_int_equal(ag__room_local_members(srv, "r3"), 0);
    fixture_drop(b);
    ag_room_delete(srv, "r3");
}

/* Names that could not be rooms here, and frames no member could queue, are refused by the C API. */
static void test_api_bounds(void **state)
{
    char name[300];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0'; /* over the default maxRoomNameLength (256) */
    assert_int_equal(ag_room_create(srv, name), AG_EINVAL);
    assert_int_equal(ag_room_create(srv, ""), AG_EINVAL);
    assert_int_equal(ag_room_broadcast(srv, name, "x"), AG_EINVAL);
    fake_t *a = joined("r2");
    size_t big = ag_conn_max_frame(srv) + 1;
    char *text = malloc(big + 1);
    memset(text, 't', big);
    text[big] = '\0';
    assert_int_equal(ag_room_broadcast(srv, "r2", text), AG_ETOOBIG);
    json_t *o = json_pack("{s:s}", "blob", text);
    assert_int_equal(ag_push_room(srv, "r2", o), AG_ETOOBIG);
    assert_int_equal(ag_push_conn(srv, a->conn->id, o), AG_ETOOBIG);
    json_decref(o);
    free(text);
    assert_false(a->closed);
    assert_null(fixture_next(a)); /* nothing reached it */
    fixture_drop(a);
}

static json_t *question(ag_conn_t *sender, const char *room, json_t *payload, void *data)
{
    char text[64];
    snprintf(text, sizeof(text), "%s?", json_string_value(json_object_get(payload, "message")));
    json_object_set_new(payload, "message", json_string(text));
    return payload;
}

static int refusals_asked, chain_connects, chain_disconnects;
static int refuse_r2(ag_conn_t *c, const char *room, const char **reject, void *data)
{
    refusals_asked++;
    if (strcmp(room, "r2") == 0) {
        *reject = data;
        return 1;
    }
    return 0;
}
static void count_connect(ag_conn_t *c, void *data)
{
    chain_connects++;
}
static void count_disconnect(ag_conn_t *c, const ag_disconnect_t *why, void *data)
{
    chain_disconnects++;
}

static json_t *said(fake_t *f)
{
    json_t *m = NULL, *x;
    while ((x = fixture_next(f)) != NULL) {
        if (json_object_get(x, "message") != NULL) {
            json_decref(m);
            m = json_incref(x);
        }
        json_decref(x);
    }
    return m;
}

static int collect_room(const char *room, void *data)
{
    json_array_append_new(data, json_string(room));
    return 0;
}

/* ag_hooks_add: the application's set first, then the added ones in order; ag_set_hooks leaves the added ones. On a
 * node of its own: added sets cannot be removed. */
static void test_hook_chain(void **state)
{
    ag_server_t *shared = srv;
    srv = fixture_server("general:\n  startingChatRooms: [\"r1\", \"r2\"]\n");
    ag_hooks_t app = {.on_say = shout, .on_connect = count_connect};
    ag_set_hooks(srv, &app);
    ag_hooks_t a = {.on_say = question, .on_join = refuse_r2, .on_connect = count_connect, .data = "refused by a"};
    ag_hooks_t b = {.on_join = refuse_r2, .on_say_recipient = per_recipient, .on_disconnect = count_disconnect, .data = "by b"};
    assert_int_equal(ag_hooks_add(srv, &a), AG_OK);
    assert_int_equal(ag_hooks_add(srv, &b), AG_OK);
    assert_int_equal(ag_hooks_add(srv, NULL), AG_EINVAL);

    chain_connects = 0;
    fake_t *f = joined("r1");
    assert_int_equal(chain_connects, 2); /* the application's and a's */
    refusals_asked = 0;
    assert_json_text(fixture_ask(f, "{\"event\":\"roomAdd\",\"room\":\"r2\",\"messageId\":2}"),
                     "{\"status\":\"Error: refused by a\",\"error\":\"Error: refused by a\",\"context\":\"response\","
                     "\"data\":{},\"messageId\":2}");
    assert_int_equal(refusals_asked, 1); /* b was not asked */

    fixture_send(f, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"hey\"}");
    json_t *m = said(f);
    assert_string_equal(json_string_value(json_object_get(m, "message")), "hey!?"); /* the application's, then a's */
    assert_string_equal(json_string_value(json_object_get(m, "to")), f->conn->id);  /* b's, per recipient */
    json_decref(m);
    fixture_send(f, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"drop\"}");
    m = said(f);
    assert_null(m); /* the application's set dropped it: a never saw it */

    ag_set_hooks(srv, NULL);
    fixture_send(f, "{\"event\":\"say\",\"room\":\"r1\",\"message\":\"x\"}");
    m = said(f);
    assert_string_equal(json_string_value(json_object_get(m, "message")), "x?");
    json_decref(m);

    /* the accessors a module reads a connection with */
    ag_conn_t *c = f->conn;
    assert_ptr_equal(ag_conn_find(srv, ag_conn_id(c)), c);
    assert_null(ag_conn_find(srv, "nobody"));
    assert_string_equal(ag_conn_fingerprint(c), ag_conn_id(c));
    assert_string_equal(ag_conn_remote_ip(c), "127.0.0.1");
    assert_int_equal(ag_conn_remote_port(c), 4242);
    assert_string_equal(ag_conn_transport(c), "websocket");
    assert_string_equal(ag_conn_protocol(c), "fake");
    assert_null(ag_conn_user(c));
    assert_null(ag_conn_data(c));
    assert_ptr_equal(ag_conn_server(c), srv);
    json_t *rooms = json_array();
    assert_int_equal(ag_conn_rooms(c, collect_room, rooms), 1);
    assert_string_equal(json_string_value(json_array_get(rooms, 0)), "r1");
    json_decref(rooms);

    /* bounded: 64 added sets */
    int added = 2;
    while (ag_hooks_add(srv, &a) == AG_OK && added < 1000)
        added++;
    assert_int_equal(added, 64);
    assert_int_equal(ag_hooks_add(srv, &a), AG_EBUSY);

    chain_disconnects = 0;
    fixture_drop(f);
    assert_int_equal(chain_disconnects, 1);
    fixture_server_done(srv);
    srv = shared;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership_and_index),
        cmocka_unit_test(test_broadcast_frame_is_shared),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_disconnect_hook_sees_why),
        cmocka_unit_test(test_delete_room),
        cmocka_unit_test(test_push_room_and_broadcast),
        cmocka_unit_test(test_join_api),
        cmocka_unit_test(test_index_order_and_members),
        cmocka_unit_test(test_api_bounds),
        cmocka_unit_test(test_hook_chain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
