/*
 * actionhero's cluster RPC envelopes (server/ahrpc.c), as an actionhero app's node publishes them on the shared Redis
 * channel, on a real node (memory store; built by ag_server_create, it never listens) holding one connection. Each
 * input is one envelope; "@id@" in it stands for that connection's id, so connection methods are reached. Every frame
 * queued to the connection must be JSON; the node's state is reset after each input as in fuzz_session.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "actiongate.h"
#include "ahrpc.h"
#include "conn.h"
#include "server.h"

static ag_server_t *node;

static void fake_pending(ag_conn_t *c, void *self)
{
    (void)c;
    (void)self;
}

static void fake_close(ag_conn_t *c, void *self, const ag_disconnect_t *why)
{
    (void)c;
    (void)why;
    *(int *)self = 1;
}

static const ag_transport_t fake_transport = {"fuzz", fake_pending, fake_close, "fuzz"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char yaml[] = "general:\n  logLevel: none\n  startingChatRooms: [defaultRoom]\n";
    char err[512];
    ag_log_threshold = AG_LOG_NONE;
    ag_config_t *cfg = ag_config_load_string(yaml, "fuzz.yaml", err, sizeof(err));
    if (cfg == NULL || (node = ag_server_create(cfg, err, sizeof(err))) == NULL)
        abort();
    return 0;
}

static void drain(ag_conn_t *c)
{
    ag_frame_t *f;
    while ((f = ag_conn_shift(c)) != NULL) {
        json_t *j = json_loadb(f->data, f->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j == NULL)
            abort();
        json_decref(j);
        ag_frame_release(f);
    }
}

static void leave_rooms(void *data, const char *err, json_t *rooms)
{
    (void)data;
    (void)err;
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r)
    {
        const char *name = json_string_value(r);
        if (name != NULL && strcmp(name, "defaultRoom") != 0)
            ag_room_delete(node, name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    int closed = 0;
    ag_conn_info_t info = {"fuzz-fingerprint", "127.0.0.1", 4242, "websocket", 1, NULL, NULL};
    ag_conn_t *c = ag_conn_create(node, &fake_transport, &closed, &info);
    if (c == NULL)
        abort();
    drain(c);
    /* the envelope, with every "@id@" replaced by the connection's id */
    char *msg = malloc(size * 9 + 1);
    size_t n = 0;
    for (size_t i = 0; i < size;) {
        if (i + 4 <= size && memcmp(data + i, "@id@", 4) == 0) {
            memcpy(msg + n, c->id, 36);
            n += 36;
            i += 4;
        } else {
            msg[n++] = (char)data[i++];
        }
    }
    ag_ahrpc_on_do(node, msg, n);
    free(msg);
    h2o_evloop_run(node->loop, 0);
    drain(c);
    if (!closed)
        ag_conn_on_transport_gone(c, &AG_DISCONNECT_PEER_CLOSED);
    node->store->ops->room_list(node->store, leave_rooms, NULL);
    h2o_evloop_run(node->loop, 0);
    return 0;
}
