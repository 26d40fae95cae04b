/*
 * Push to one connection by id, wherever it lives (server/push.c; the public side is ag_push_conn in
 * include/actiongate.h). A connection of this node gets the frame at once; otherwise the push goes to the cluster
 * (ag_cluster_forward_push), which publishes it, and the node that holds the connection delivers it through the
 * receiver this module registers. Push to a room is a room publish (server/rooms.c).
 */
#ifndef AG_PUSH_H
#define AG_PUSH_H

#include <jansson.h>
#include "node.h"

/* Registers this module as the cluster's receiver of pushes for this node's connections, and of the calls below
 * (after ag_cluster_init). */
void ag__push_init(ag_server_t *s);

/*
 * The server API's calls, as every node runs them (ag_cluster_call; server/serverapi.c builds them). A call is an
 * object with "op" and its fields, checked by the caller already (each node checks them again, and answers {} to one
 * it does not understand):
 *   push             {connectionId, data}          -> {"found": bool} (+ "error" when found but not queued)
 *   pushUser         {user, data}                  -> {"count": n delivered, "skipped": n over serverApi.maxFanout}
 *   pushFingerprint  {fingerprint, data}           -> the same
 *   disconnect       {connectionId, reconnect}     -> {"found": bool}
 *   count            {}                            -> {"connections": n open here}
 * data gets "context": "api" unless it has one, as ag_push_conn.
 */
#define AG_PUSH_OP_PUSH "push"
#define AG_PUSH_OP_USER "pushUser"
#define AG_PUSH_OP_FINGERPRINT "pushFingerprint"
#define AG_PUSH_OP_DISCONNECT "disconnect"
#define AG_PUSH_OP_COUNT "count"
/* Runs one call on this node; call borrowed. The answer (new reference), or NULL when out of memory. */
json_t *ag__push_call(ag_server_t *s, const json_t *call);
/* A copy of obj with "context" set to "api" when it has none (new reference), or NULL when out of memory. */
json_t *ag__push_payload(const json_t *obj);

#endif
