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
#include "actions.h"
#include "fuzz_node.h"

static ag_server_t *node;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    node = fuzz_node("general:\n  logLevel: none\n  startingChatRooms: [defaultRoom, otherRoom]\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int closed = 0;
    ag_conn_info_t info = {"fuzz-fingerprint", "127.0.0.1", 4242, "websocket", 0, NULL, NULL};
    ag_conn_t *c = ag_conn_create(node, &fuzz_transport, &closed, &info);
    if (c == NULL)
        abort();
    fuzz_drain(c);
    const char *p = (const char *)data, *end = p + size;
    while (p < end && !closed) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *e = lf != NULL ? lf : end;
        int binary = e > p && (uint8_t)p[0] == 0xff;
        ag_conn_on_frame(c, p + binary, (size_t)(e - p - binary), binary);
        fuzz_drain(c);
        p = lf != NULL ? lf + 1 : end;
    }
    h2o_evloop_run(node->loop, 0);
    fuzz_drain(c);
    ag_conn_on_transport_gone(c, &AG_DISCONNECT_PEER_CLOSED);

    ag__actions_dispose(node);
    if (ag__actions_init(node) != 0)
        abort();
    node->store->ops->room_list(node->store, fuzz_delete_rooms, &node);
    h2o_evloop_run(node->loop, 0);
    return 0;
}
