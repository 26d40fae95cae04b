/*
 * actionhero's cluster RPC envelopes (server/ahrpc.c), as an actionhero app's node publishes them on the shared Redis
 * channel, on a real node (memory store; built by ag_server_create, it never listens) holding one connection. Each
 * input is one envelope; "@id@" in it stands for that connection's id, so connection methods are reached. Every frame
 * queued to the connection must be JSON; the node's state is reset after each input as in fuzz_session.c.
 */
#include <stdint.h>
#include "ahrpc.h"
#include "fuzz_node.h"

static ag_server_t *node;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    node = fuzz_node("general:\n  logLevel: none\n  startingChatRooms: [defaultRoom]\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    int closed = 0;
    ag_conn_info_t info = {"fuzz-fingerprint", "127.0.0.1", 4242, "websocket", 1, NULL, NULL};
    ag_conn_t *c = ag_conn_create(node, &fuzz_transport, &closed, &info);
    if (c == NULL)
        abort();
    fuzz_drain(c);
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
    fuzz_drain(c);
    if (!closed)
        ag_conn_on_transport_gone(c, &AG_DISCONNECT_PEER_CLOSED);
    node->store->ops->room_list(node->store, fuzz_delete_rooms, &node);
    h2o_evloop_run(node->loop, 0);
    return 0;
}
