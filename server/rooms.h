/*
 * Rooms and chat on one node (server/rooms.c; the hook chain server/rooms_hooks.c, a room's history and the resume
 * replay server/rooms_history.c); push to a room. Push to one connection is server/push.c.
 *
 * The store holds the rooms and their members (for every node); the local memberships are the local truth for
 * delivery. Each is one ag_room_member_t, linked three ways so that no operation scans: in its room's local index
 * (room -> local members, an array with swap-remove: fan-out is O(local members)), in its connection's list (join
 * order: leaving every room on close is linear in the connection's rooms), and in a node-wide keyed map
 * "<conn id> <room>" (is c in this room: O(1)). The node holds one store subscription per room that has local members
 * (subscribed with the first, dropped with the last).
 *
 * Bounds (general.*): a room name has at most maxRoomNameLength bytes, a connection is in (or joining) at most
 * maxRoomsPerConnection rooms, and the store holds at most maxRooms rooms (per node on the memory store, per cluster on
 * Redis).
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
/* The texts of the bounds; each is followed by " (at most N)" with the configured bound. */
#define AG_ERR_ROOM_NAME_TOO_LONG "room name too long"
#define AG_ERR_CONN_TOO_MANY_ROOMS "connection in too many rooms"
#define AG_ERR_TOO_MANY_ROOMS "too many rooms"
/* A say whose chat frame no connection could queue (see ag_conn_max_frame); followed by " (at most N bytes)". */
#define AG_ERR_MESSAGE_TOO_BIG "message too big"

/* One connection in one room, on this node (see above). */
typedef struct st_ag_room_member_t ag_room_member_t;

typedef void (*ag__room_cb)(ag_conn_t *c, const char *err, json_t *data, void *ud);

int ag__rooms_init(ag_server_t *s, char *errbuf, size_t errlen);

/* The hook chain (ag_set_hooks, ag_hooks_add), run as include/actiongate.h says. join / leave: 1 when a set rejected
 * (*reject may then hold its text). say takes payload's reference and returns the one to publish, or NULL. */
int ag__hooks_join(ag_conn_t *c, const char *room, const char **reject);
int ag__hooks_leave(ag_conn_t *c, const char *room, const char **reject);
json_t *ag__hooks_say(ag_conn_t *c, const char *room, json_t *payload);
void ag__hooks_connect(ag_conn_t *c);
void ag__hooks_disconnect(ag_conn_t *c, const ag_disconnect_t *why);
void ag__rooms_dispose(ag_server_t *s);

/* Verb backends. err (NULL on success) is the protocol text without the "Error: " prefix; data is borrowed. A say whose
 * chat frame would be over ag_conn_max_frame() is refused with AG_ERR_MESSAGE_TOO_BIG and reaches nobody. */
void ag__room_view(ag_conn_t *c, const char *room, ag__room_cb cb, void *ud);
void ag__room_say(ag_conn_t *c, const char *room, const char *message, ag__room_cb cb, void *ud);
/* The connection closes: leaves every room (store and local index), announcing when configured. */
void ag__rooms_conn_closed(ag_conn_t *c);
/* c was handed over to another node or worker (conn.h ag_conn_hand_over_end): its rooms here forget it, and nothing else
 * happens (no leave hook, no announcement, its store memberships stay for the new owner). */
void ag__rooms_conn_handed_over(ag_conn_t *c);
/* Whether c is in room (O(1)). */
int ag__conn_in_room(const ag_conn_t *c, const char *room);
/* A resume's answer when a room's history no longer holds what the client missed (or was made anew). */
#define AG_RESUME_HISTORY_GONE "room history gone"
/* frames: the lines c's client missed, with their offsets, ready for ag_conn_send_unnumbered (borrowed for the call);
 * reason: why it cannot resume (frames NULL) */
typedef void (*ag__rooms_replay_cb)(ag_conn_t *c, const char *reason, ag_frame_t **frames, size_t n, void *ud);
/* Gathers the lines of every room of c after the offset its client last got in it (offsets: an object room ->
 * offset, borrowed for the call; a room missing there: from where c joined it). cb runs once, maybe before this
 * returns. */
void ag__rooms_replay(ag_conn_t *c, const json_t *offsets, ag__rooms_replay_cb cb, void *ud);
/* Makes c (a connection taken over, ag_conn_adopt) a member of room again, as it was on the node that died: no join
 * hook, no announcement, its history from (epoch, since). cb(c, err, data) once the membership is in effect. */
void ag__rooms_adopt(ag_conn_t *c, const char *room, uint64_t epoch, uint64_t since,
                     void (*cb)(ag_conn_t *c, const char *err, void *data), void *data);
/* The rooms of c in join order: for (const ag_room_member_t *m = c->rooms_first; m != NULL; m = ag__room_next(m)). */
const ag_room_member_t *ag__room_next(const ag_room_member_t *m);
/* The room's name, borrowed while the membership lasts. */
const char *ag__room_name(const ag_room_member_t *m);
/* Where the history of m's room stood when its resumable connection joined (its epoch; 0 when unknown, and the last
 * offset then), for the resume state file (server/resume_state.c). */
void ag__room_resume_point(const ag_room_member_t *m, uint64_t *epoch, uint64_t *since);
/* A membership of a restored connection (ag_conn_restore) back as it was: in the store (the room made when missing)
 * and locally, with its resume point, without hooks, announcement or answer. The store must answer at once (the
 * memory stores do). AG_OK, AG_EINVAL (a bad name, or c is in room already), AG_ENOMEM, AG_ENOENT (the store refused). */
int ag__rooms_restore(ag_conn_t *c, const char *room, uint64_t epoch, uint64_t since);
/* The first room c joined among those it is still in, or NULL. */
const char *ag__conn_first_room(const ag_conn_t *c);
/* 0 when room is a usable name here (non-empty, at most general.maxRoomNameLength bytes), else AG_EINVAL. */
int ag__room_name_check(const ag_server_t *s, const char *room);
/* Local members of room on this node (for tests and stats). */
size_t ag__room_local_members(ag_server_t *s, const char *room);

#endif
