/*
 * What the files of the connection module share, and nothing outside it includes: conn.c (the connection itself: its
 * lifetime, the outbound queue and the slow-consumer rule, the message rate, a carrier that drops) and conn_resume.c
 * (resume: a resumable connection's state, the store's copy of it, the node's away connections, a resume, a takeover,
 * the graceful restart's side). conn.h is the module's interface.
 */
#ifndef AG_CONN_INTERNAL_H
#define AG_CONN_INTERNAL_H

#include "conn.h"
#include "node.h"
#include "outbox.h"

/* A resumable connection's state (conn.h, "Resume"). */
typedef struct st_ag_conn_resume_t {
    ag_outbox_t outbox;
    char token[AG_RESUME_TOKEN_LEN + 1];
    int away;
    uint64_t seq_at_away;       /* the outbox's last number when the carrier dropped */
    const ag_disconnect_t *why; /* why the carrier dropped: the reason the consumer sees if it never comes back */
    h2o_timeout_entry_t expiry; /* in the node's window list while away */
    ag_conn_t *conn;
    /* a connection taken over holds its live room lines until the lines it missed are replayed (ag_conn_hold_end) */
    int holding;
    ag_frame_t **held;
    size_t n_held;
} ag__conn_resume_t;

/* The node's away connections: one list per node, in the order they went away, as the window is the same for all. */
struct st_ag_away_t {
    h2o_timeout_t window;
    h2o_timeout_t now; /* away connections closed while away: their reference goes on the next pass */
    /* a store that keeps resumable connections (rconn_put): their records are kept alive every half window */
    h2o_timeout_t touch;
    h2o_timeout_entry_t touch_entry;
    ag_server_t *server;
};

/* --- conn.c --- */

/* Frees what c owns but the queue (its resume state too); c itself stays. */
void ag__conn_free_fields(ag_conn_t *c);
/* Drops every frame queued on c. */
void ag__conn_queue_clear(ag_conn_t *c);
/* Marks c closed, unregisters it and tells the consumer. Runs once. */
void ag__conn_finish(ag_conn_t *c);
/* Queues f on c (adds a reference) with every check but numbering: AG_OK or as ag_conn_send. */
int ag__conn_queue_frame(ag_conn_t *c, ag_frame_t *f);

/* --- conn_resume.c --- */

/* The store's record of resumable c (when the store keeps records) gets f, numbered in c's outbox, sent in reply to
 * message_id (may be NULL). */
void ag__conn_record_frame(ag_conn_t *c, const ag_frame_t *f, const char *message_id);
/* c is away no more (a carrier took it back, or it ends): out of the window list and the away count; nothing when it
 * was not away. */
void ag__conn_away_leave(ag_conn_t *c);
/* The window list's callback: an away connection whose client did not come back ends. */
void ag__conn_on_away_expired(h2o_timeout_entry_t *entry);

#endif
