/*
 * Rooms and chat on one node (server/rooms.c); push to a room. Push to one connection is server/push.c.
 *
 * The store holds the rooms and their members (for every node); conn->rooms is the local truth for delivery. A local
 * index room -> local member connections makes fan-out O(local members), and the node holds one store subscription
 * per room that has local members (subscribed with the first, dropped with the last).
 *
 * Everything that reaches members goes through the room's store channel ("room:<name>"), published once, so every node
 * delivers to its own members. A channel payload is one type byte and a complete session frame: 'c' chat (runs the
 * per-recipient hook), 'p' push, 'd' room deleted (the frame is {"room":…}). Without a per-recipient hook the frame is
 * encoded once and the same ag_frame_t goes into every recipient's queue.
 */
#ifndef AG_ROOMS_H
#define AG_ROOMS_H

#include "actiongate.h"
#include "conn.h"
#include "node.h"

#define AG_ERR_ROOM_MISSING "room does not exist"
#define AG_ERR_ROOM_EXISTS "room exists"
#define AG_ERR_ROOM_REQUIRED "a room is required"
#define AG_ERR_ROOM_AND_MESSAGE "both room and message are required"
#define AG_MSG_ROOM_DELETED "this room has been deleted"

typedef void (*ag__room_cb)(ag_conn_t *c, const char *err, json_t *data, void *ud);

int ag__rooms_init(ag_server_t *s, char *errbuf, size_t errlen);
void ag__rooms_dispose(ag_server_t *s);

/* Verb backends. err (NULL on success) is the protocol text without the "Error: " prefix; data is borrowed. */
void ag__room_view(ag_conn_t *c, const char *room, ag__room_cb cb, void *ud);
void ag__room_say(ag_conn_t *c, const char *room, const char *message, ag__room_cb cb, void *ud);
/* The connection closes: leaves every room (store and local index), announcing when configured. */
void ag__rooms_conn_closed(ag_conn_t *c);
/* Index of room in c->rooms, or -1. */
long ag__conn_room_index(const ag_conn_t *c, const char *room);
/* Local members of room on this node (for tests and stats). */
size_t ag__room_local_members(ag_server_t *s, const char *room);

#endif
