/*
 * ag_ws_t: a server-side WebSocket on h2o 2.2.5 + wslay, shared by the plain /primus transport and engine.io's
 * websocket transport.
 *
 * What it adds to h2o's websocket API:
 * - writes are queued and flushed once per loop iteration (a zero timeout), never re-entering wslay from inside a
 *   receive callback, and batching every frame of an iteration into one socket write;
 * - a client's WebSocket PING is reported (h2o hides control frames);
 * - close(code, reason) with a deadline: a peer that never answers the close handshake is cut after 2 s;
 * - the incoming message limit (close 1009 above it, done by wslay);
 * - hibernation: wslay keeps 8 KiB of buffers per context, more than the rest of a connection together. A socket that
 *   has been quiet for a second (no partial frame in, nothing queued out, no write in flight) frees its wslay context
 *   and its input buffer, and gets them back when bytes arrive; a new socket that has not spoken yet sleeps as soon as
 *   its greeting is written, so a burst of connections leaves no freed buffers between their long-lived parts;
 * - data frames are framed here and gathered: everything sent to a socket in one loop iteration leaves in one write
 *   (h2o 2.2.5 writes each wslay frame on its own), and a hibernating socket is written without waking it;
 * - with general.ioUring, the writes of many sockets in one loop iteration (a room's line to its members) go out in
 *   one io_uring submit (server/batch_send.h); what a full socket does not take goes to h2o's write as before.
 *
 * Lifetime: on_closed() is the last callback; the ag_ws_t is freed right after it returns.
 */
#ifndef AG_WS_H
#define AG_WS_H

#include "actiongate.h"
#include "node.h"
#include <h2o/websocket.h>

typedef struct st_ag_ws_t ag_ws_t;

typedef struct st_ag_ws_callbacks_t {
    /* A complete text (binary == 0) or binary message; data borrowed for the call. */
    void (*on_message)(ag_ws_t *ws, const uint8_t *data, size_t len, int binary);
    /* A WebSocket PING control frame arrived (wslay answers it). May be NULL. */
    void (*on_ping)(ag_ws_t *ws);
    /* The socket is gone (peer closed, error, close handshake done, or the close deadline passed). why says which, as
     * far as the socket can tell: too big (wslay refused a message over the limit), a write error, else peer closed. */
    void (*on_closed)(ag_ws_t *ws, const ag_disconnect_t *why);
} ag_ws_callbacks_t;

struct st_ag_ws_t {
    h2o_websocket_conn_t *conn;
    ag_server_t *server;
    const ag_ws_callbacks_t *cb;
    void *data; /* the owner's */
    /* private */
    struct wslay_event_callbacks _wslay_cb;
    void (*_h2o_on_msg)(wslay_event_context_ptr, const struct wslay_event_on_msg_recv_arg *, void *);
    ssize_t (*_h2o_recv)(wslay_event_context_ptr, uint8_t *, size_t, int, void *);
    ssize_t (*_h2o_send)(wslay_event_context_ptr, const uint8_t *, size_t, int, void *);
    uint8_t _out_hdr[14]; /* a frame header held back to leave in one write with its payload */
    uint8_t _out_hdr_len;
    size_t _max_message;
    h2o_timeout_entry_t _flush;
    h2o_linklist_t _batch; /* in the node's list of sockets to write together (general.ioUring), instead of _flush */
    h2o_timeout_entry_t _close_deadline;
    h2o_timeout_entry_t _idle;
    h2o_iovec_t _acc; /* framed data waiting for the socket */
    size_t _acc_cap, _acc_frames;
    h2o_iovec_t _wr; /* framed data being written */
    size_t _wr_cap;
    int _wr_ours;
    /* where the inbound byte stream stands, frame by frame (hibernation needs a frame boundary) */
    uint8_t _hdr[14];
    uint8_t _hdr_len, _hdr_need, _fin_opcode, _in_msg;
    uint64_t _payload_left;
    uint8_t _fresh; /* nothing has arrived since the upgrade (and no close): sleep as soon as the greeting is out */
    int _closing;
    int _write_failed;
    int _close_code; /* -1: no close waiting for the data queue to drain */
    char _close_reason[64];
};

/* The node's WebSocket timers (s->ws): before the first upgrade, and after the last loop run. 0 or AG_ENOMEM. */
int ag_ws_init(ag_server_t *s);
void ag_ws_dispose(ag_server_t *s);

/* Answers the upgrade (101) and returns the socket; max_message is the incoming limit in bytes. Extra response headers
 * may be set in req->res.headers before the call. */
ag_ws_t *ag_ws_upgrade(h2o_req_t *req, const char *client_key, size_t max_message, const ag_ws_callbacks_t *cb, void *data);
/* Queues one message (copied). Returns 0, or AG_ECLOSED after close. */
int ag_ws_send(ag_ws_t *ws, const void *data, size_t len, int binary);
/* Queues a close frame (code 0: a close frame without a status code) and arms the deadline. Idempotent. */
void ag_ws_close(ag_ws_t *ws, uint16_t code, const char *reason);
/* Bytes (and frames) queued and not yet written. */
size_t ag_ws_queued_bytes(ag_ws_t *ws);
size_t ag_ws_queued_count(ag_ws_t *ws);
int ag_ws_is_closing(ag_ws_t *ws);

#endif
