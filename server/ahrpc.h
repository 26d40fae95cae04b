/*
 * actionhero's cluster RPC on this node's connections (redis.compat: actionhero).
 *
 * An actionhero node that does not hold a connection publishes {"messageType":"do", "method", "connectionId", "args",
 * "messageId"} on the app's channel and waits (general.rpcTimeout, 5 s) for a "doResponse" with the same messageId.
 * The Redis store hands every `do` to the node layer (on_node_event "_rpc"); this module serves those addressed to a
 * connection of this node and answers through the store (publish on "_rpc"):
 *   api.chatRoom.addMember(id, room), api.chatRoom.removeMember(id, room): the join or leave, as a roomAdd / roomLeave
 *       would do it (hooks, bounds, announcements); response true, or {"error": "<the verb's error text>"} where
 *       actionhero's own method would throw (and its caller would wait for the timeout);
 *   api.connections.applyResponder(id, method, args): method "sendMessage" sends args to the connection ("context"
 *       defaults to "api"), "destroy" closes it (no reconnect); the response is the connection as detailsView shows it;
 *   any other method on one of our connections: {"error": "RPC method `<method>` is not served by actiongate"}.
 * A `do` without connectionId goes to every node: api.log is logged here, the rest is left to the app's nodes, which
 * answer it. A `do` for a connection no node of ours holds is not ours to answer.
 */
#ifndef AG_AHRPC_H
#define AG_AHRPC_H

#include <stddef.h>
#include "node.h"

/* One `do` message (its JSON text, borrowed for the call). */
/* Registers ag_ahrpc_on_do as the cluster's RPC receiver. */
void ag_ahrpc_init(ag_server_t *s);
void ag_ahrpc_on_do(ag_server_t *s, const char *payload, size_t len);

#endif
