/*
 * What the files of the rooms module share, and nothing outside it includes: rooms.c (membership, publishing, delivery,
 * join / leave, view / say), rooms_hooks.c (the hook chain) and rooms_history.c (a room's history: the lines a node
 * missed, given out in offset order, and what a resuming connection missed).
 */
#ifndef AG_ROOMS_INTERNAL_H
#define AG_ROOMS_INTERNAL_H

#include "rooms.h"
#include "line_order.h"

typedef struct st_ag__lroom_t ag__lroom_t;

struct st_ag_room_member_t {
    ag_conn_t *conn; /* borrowed: a closing connection leaves every room first (ag__rooms_conn_closed) */
    ag__lroom_t *room;
    size_t slot;                   /* index in room->members */
    ag_room_member_t *prev, *next; /* the connection's rooms, in join order */
    /* a resumable connection's: where the room's history stood when it joined (its epoch, and the last offset then) */
    uint64_t since, epoch;
};

/* A room with members on this node. Exists while it has at least one. */
struct st_ag__lroom_t {
    ag_room_member_t **members;
    size_t n, cap;
    ag_line_order_t order; /* the offsets of the lines given out here (line_order.h) */
    char name[];
};

struct st_ag_rooms_t {
    ag_map_t local;       /* room -> ag__lroom_t* */
    ag_map_t memberships; /* "<conn id> <room>" -> ag_room_member_t* */
};

/* The hook chain: slot 0 is the application's (ag_set_hooks; all NULL when unset), the rest were added in order
 * (ag_hooks_add). Bounded so that a module registering in a loop cannot grow it without end. */
#define AG__HOOKS_MAX 64

struct st_ag_hook_chain_t {
    ag_hooks_t sets[AG__HOOKS_MAX + 1];
    size_t n; /* sets in use, slot 0 included */
};

/* Every set of the chain of s, in order, as h (a server without hooks has no chain). */
#define AG__EACH_HOOK(s, h)                                                                                                        \
    for (const ag_hooks_t *h = (s)->hooks != NULL ? (s)->hooks->sets : NULL, *h##_end = h != NULL ? h + (s)->hooks->n : NULL;      \
         h != NULL && h < h##_end; h++)

/* Whether a set of the chain has on_say_recipient. */
int ag__hooks_have_recipient(ag_server_t *s);
/* A new reference to what goes to recipient, or NULL. */
json_t *ag__hooks_say_recipient(ag_conn_t *recipient, const char *room, json_t *payload);

/* c's membership of room, or NULL (O(1)). */
ag_room_member_t *ag__rooms_member_find(const ag_conn_t *c, const char *room);
/* A channel message (type byte, frame) given out to the room's members here, or the room deleted. */
void ag__rooms_dispatch(ag_server_t *s, const char *room, const char *payload, size_t len, uint64_t offset);

/* The room's history, the store's room messages and resubscriptions, for a node being made (ag__rooms_init). */
void ag__rooms_history_init(ag_server_t *s);
/* A room frame (a JSON object's text) with "offset" as its last member, for resumable recipients. */
ag_frame_t *ag__rooms_with_offset(const char *frame, size_t len, uint64_t offset);
/* A resumable connection's new membership starts where the room's history stands: a resume replays from there. */
void ag__rooms_note_since(ag_conn_t *c, const char *room);

#endif
