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

/* Registers this module as the cluster's receiver of pushes for this node's connections (after ag_cluster_init). */
void ag__push_init(ag_server_t *s);
/* A copy of obj with "context" set to "api" when it has none (new reference), or NULL when out of memory. */
json_t *ag__push_payload(const json_t *obj);

#endif
