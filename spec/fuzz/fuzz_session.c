/*
 * The session layer on a real node (memory store, the built-in actions; built by ag_server_create, it never listens). Each input is
 * one connection: every LF-separated line is one inbound message, through the same ag_conn_on_frame() the transports call (a line
 * starting with byte 0xff is sent as binary, without that byte). Every frame the node queues must be JSON.
 *
 * State that would outlive the input is reset after it, so each run starts from the same node: the connection goes
 * away, the actions module is rebuilt (sleepTest timers would otherwise keep requests for up to an hour) and rooms
 * other than the starting ones are deleted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "actiongate.h"
#include "actions.h"
#include "server.h"

static ag_server_t *node;

typedef struct {
    int closed;
} fake_t;

static void fake_pending(ag_conn_t *c, void *self)
{
    (void)c;
    (void)self;
}

static void fake_close(ag_conn_t *c, void *self, const ag_disconnect_t *why)
{
    (void)c;
    (void)why;
    ((fake_t *)self)->closed = 1;
}

static const ag_transport_t fake_transport = {"fuzz", fake_pending, fake_close, "fuzz"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char yaml[] = "general:\n  logLevel: none\n  startingChatRooms: [defaultRoom, otherRoom]\n";
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

static void delete_room(void *data, const char *err, json_t *rooms)
{
    (void)data;
    (void)err;
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r)
    {
        const char *name = json_string_value(r);
        if (name != NULL && strcmp(name, "defaultRoom") != 0 && strcmp(name, "otherRoom") != 0)
            ag_room_delete(node, name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_t fake = {0};
    ag_conn_info_t info = {"fuzz-fingerprint", "127.0.0.1", 4242, "websocket", 0, NULL, NULL};
    ag_conn_t *c = ag_conn_create(node, &fake_transport, &fake, &info);
    if (c == NULL)
        abort();
    drain(c);
    const char *p = (const char *)data, *end = p + size;
    while (p < end && !fake.closed) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *e = lf != NULL ? lf : end;
        int binary = e > p && (uint8_t)p[0] == 0xff;
        ag_conn_on_frame(c, p + binary, (size_t)(e - p - binary), binary);
        drain(c);
        p = lf != NULL ? lf + 1 : end;
    }
    h2o_evloop_run(node->loop, 0);
    drain(c);
    ag_conn_on_transport_gone(c, &AG_DISCONNECT_PEER_CLOSED);

    ag__actions_dispose(node);
    if (ag__actions_init(node) != 0)
        abort();
    node->store->ops->room_list(node->store, delete_room, NULL);
    h2o_evloop_run(node->loop, 0);
    return 0;
}
