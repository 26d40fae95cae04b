/*
 * ag_outbox_t: what one resumable connection was sent (README "Resume"), numbered.
 *
 * Every frame addressed to the connection alone (a reply, a push, a room join's answer) gets the next sequence number
 * and is kept here, as sent, so that a client that comes back saying "I have everything up to n" is sent n+1 onwards
 * again, and a request re-sent with a messageId that was already answered gets that answer, not a second run. Chat
 * lines are not kept here: they live once per room in the store's history (store.h, history_publish).
 *
 * Bounded: the newest max_frames frames and max_bytes bytes; older ones are dropped, and `floor` remembers the newest
 * dropped sequence number, so that a resume that would need one is refused instead of silently skipping it.
 */
#ifndef AG_OUTBOX_H
#define AG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include "frame.h"

typedef struct st_ag_outbox_entry_t {
    ag_frame_t *frame; /* a reference; its text starts with {"seq":n */
    char *message_id;  /* owned, or NULL: the messageId of the request this frame answers */
    uint64_t seq;
} ag_outbox_entry_t;

typedef struct st_ag_outbox_t {
    uint64_t seq;   /* the last number given (0: none yet) */
    uint64_t floor; /* the newest number dropped (0: none) */
    ag_outbox_entry_t *ring;
    size_t cap, head, n, bytes;
    size_t max_frames, max_bytes;
} ag_outbox_t;

/* An empty outbox (nothing allocated until the first frame). */
void ag_outbox_init(ag_outbox_t *o, size_t max_frames, size_t max_bytes);
void ag_outbox_dispose(ag_outbox_t *o);
/* Numbers f (a JSON object's text; borrowed): returns a new frame, {"seq":n, then f's members, that the caller owns,
 * and keeps a reference to it with message_id (copied; may be NULL). A frame that is not a JSON object is returned as
 * it is (a new reference), neither numbered nor kept. NULL when out of memory (nothing changed). */
ag_frame_t *ag_outbox_push(ag_outbox_t *o, ag_frame_t *f, const char *message_id);
/* Takes frame f (borrowed; a numbered frame, as ag_outbox_push made it, on another node) as number seq with message_id
 * (copied; may be NULL): seq must be above the last number; the numbers skipped count as dropped. AG_OK or AG_ENOMEM
 * (then nothing after the last number may be counted on: floor moves to seq), AG_EINVAL (not above the last number).
 * For a connection taken over from another node, and for a saved outbox put back (graceful restart). */
int ag_outbox_keep(ag_outbox_t *o, uint64_t seq, ag_frame_t *f, const char *message_id);
/* Calls cb for every kept frame numbered after `after`, oldest first (frames borrowed for the call). 0, or AG_ENOENT
 * (nothing sent) when one of them was dropped or `after` was never given. */
int ag_outbox_since(const ag_outbox_t *o, uint64_t after, void (*cb)(ag_frame_t *f, void *data), void *data);
/* The i-th kept entry, oldest first (i < o->n): borrowed while o is not changed. */
const ag_outbox_entry_t *ag_outbox_at(const ag_outbox_t *o, size_t i);
/* The kept answer to message_id (borrowed), or NULL. */
ag_frame_t *ag_outbox_reply_of(const ag_outbox_t *o, const char *message_id);

#endif
