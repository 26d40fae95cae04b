/*
 * engine.io v4 endpoint (PROTOCOL.md §4, §5) at <pathname>/ with three transports: polling (eio_polling.c), websocket
 * (eio_ws.c) and sse (eio_sse.c). eio_router.c routes each request (preflight, handshake, a sid's transport); eio.c holds
 * the sessions.
 *
 * Layers: an engine.io session (sid, ping timers, upgrade state, a small outbox of control packets) sits between the
 * transports and the logical connection (ag_conn_t). The session is the ag_transport_t the connection sees; the
 * connection owns the outbound queue of message frames, and the session pulls from it (ag_conn_shift) only while
 * its current transport is writable. Transports know HTTP and framing, nothing about actions or rooms; they push what
 * they read up with ag__eio_on_packet() and report ag__eio_on_writable() / ag__eio_transport_gone().
 *
 * What sits on top of a session is an upper (ag__eio_upper_t below): the logical connection (eio_upper.c), the
 * socket.io layer (socketio.c), or, in echo mode (servers.websocket.server.echo), echo (eio_upper.c: every message
 * is sent back unchanged through the session's own outbox, bounded like a connection's queue). The session never
 * names them: whoever serves a path (ag_eio_serve) says which upper its sessions get.
 *
 * Everything runs on the server's loop thread. Lifetime: a session is refcounted; the sid table, every held request
 * (polling GET, SSE stream) and every engine.io WebSocket hold a reference, so a request that outlives its session's
 * close never touches freed memory.
 */
#ifndef AG_EIO_H
#define AG_EIO_H

#include "batch_send.h"
#include "conn.h"
#include "node.h"
#include "eio_packet.h"

typedef struct st_ag__eio_session_t ag__eio_session_t;

/* What sits on top of an engine.io session. Every function gets the upper's self (ag__eio_session_t.upper_self).
 * Where a function may answer AG__EIO_UPPER_DEFAULT (or is NULL), the session applies its own rule. */
#define AG__EIO_UPPER_DEFAULT (-1)
typedef struct st_ag__eio_upper_t {
    /* A message packet from the client (data borrowed for the call). */
    void (*on_message)(void *self, const char *data, size_t len, int binary);
    /* Frames for the client: at least as many as shift() would return now, and the next one (a reference for the
     * caller) or NULL. */
    size_t (*queued)(void *self);
    ag_frame_t *(*shift)(void *self);
    /* The session and its transport hold bytes, frames unsent: AG_OK, AG_EBUSY when that made the upper's consumer
     * a slow consumer (it is closing), AG__EIO_UPPER_DEFAULT when no consumer of the upper's counts them (the session
     * applies the slow-consumer rule to itself). */
    int (*note_backlog)(void *self, size_t bytes, size_t frames);
    /* A packet (pkt; NULL for a WebSocket PING) counts against the message rate: 1 go on, 0 refused (the upper may
     * be closing), AG__EIO_UPPER_DEFAULT when the session's own bucket counts it. */
    int (*inbound)(void *self, const ag_eio_packet_t *pkt);
    /* The session now runs over another transport ("polling", "websocket", "sse"; static). May be NULL. */
    void (*set_transport_name)(void *self, const char *name);
    /* 1 when the upper asked the session to close once what it has is out. May be NULL. */
    int (*closing)(void *self);
    /* The server is stopping. May be NULL (the upper hears of it some other way). */
    void (*on_stop)(void *self, ag__eio_session_t *s);
    /* The session is gone for why (from the loop, never from inside another call of this table); self is not used
     * again. */
    void (*on_gone)(void *self, const ag_disconnect_t *why);
} ag__eio_upper_t;

/* Puts an upper on a fresh session, described by info (borrowed); sets s->upper and s->upper_self, or leaves them
 * NULL on failure (the session then closes). */
typedef void (*ag__eio_attach_cb)(ag__eio_session_t *s, const ag_conn_info_t *info);

/* Creates the node's engine.io state (s->eio) and serves the pathname (after /primus, which passes on requests with
 * an EIO query) and servers.engineio.path (engine.io's alone) with connections. 0 or AG_ENOMEM. */
int ag_eio_register(ag_server_t *s);
/* How a path ag_eio_serve serves shares it. */
typedef enum {
    AG_EIO_PATH_SHARED = 0, /* requests without EIO pass on to the next handler (the Primus endpoint at /primus) */
    AG_EIO_PATH_OWN         /* the path is engine.io's alone: a request without EIO gets engine.io's own error */
} ag_eio_path_mode_t;

/* Serves engine.io at the exact path (and path + "/"): its sessions get their upper from attach (in echo mode, echo).
 * hook_at_handshake: the connect hook (server/backend.h) is asked before the handshake, and its answer's data reaches
 * attach in info; 0: the upper asks it itself (socket.io does at its CONNECT, where the auth payload is), and
 * info->handshake carries what the hook is to be shown. path is borrowed for the server's life. 0 or AG_ENOMEM. */
int ag_eio_serve(ag_server_t *s, const char *path, ag_eio_path_mode_t mode, ag__eio_attach_cb attach, int hook_at_handshake);
/* Server stopping: every session gets its close packet where possible. */
void ag_eio_stop(ag_server_t *s);
void ag_eio_dispose(ag_server_t *s);

/* --- internal, shared by the eio_*.c files --- */

typedef enum { AG__EIO_POLLING = 0, AG__EIO_WEBSOCKET, AG__EIO_SSE } ag__eio_kind_t;

typedef struct st_ag__eio_transport_t ag__eio_transport_t;

/* One outgoing packet: a control packet (type + short literal data) or a message frame (referenced). */
typedef struct st_ag__eio_out_t {
    uint8_t type;
    ag_frame_t *frame; /* messages; NULL for control packets */
    const char *text;  /* control packet data ("probe"), static */
} ag__eio_out_t;

typedef struct st_ag__eio_transport_ops_t {
    ag__eio_kind_t kind;
    const char *name; /* "polling", "websocket", "sse" */
    /* 1 when send() can take packets now. */
    int (*writable)(ag__eio_transport_t *t);
    /* Writes the packets in order (a polling GET answers with all of them, SSE makes one event, WebSocket one frame
     * each). The frames are borrowed for the call. */
    void (*send)(ag__eio_transport_t *t, const ag__eio_out_t *pkts, size_t n);
    /* Ends this transport (the session no longer uses it). Releases held requests (a held GET gets a noop). */
    void (*close)(ag__eio_transport_t *t);
} ag__eio_transport_ops_t;

struct st_ag__eio_transport_t {
    const ag__eio_transport_ops_t *ops;
    ag__eio_session_t *session;
};

#define AG__EIO_OUTBOX_MAX 64

struct st_ag__eio_session_t {
    char sid[AG_EIO_SID_LEN + 1];
    ag_server_t *server;
    const ag__eio_upper_t *upper; /* NULL until attached, and once the upper heard the session is gone */
    void *upper_self;
    uint32_t refcnt;
    int closed;
    int upgraded;   /* moved off polling: polling requests now get "Bad request" */
    int b64;        /* the client asked for base64 binary */
    int protocol;   /* 4, or 3 (EIO=3: length-prefixed payloads, pings from the client) */
    char jsonp[12]; /* protocol 3 JSONP polling: the digits of the handshake's j ("" = XHR polling) */
    int is_jsonp;
    ag__eio_transport_t *transport; /* current */
    ag__eio_transport_t *probe;     /* upgrade candidate */
    ag__eio_transport_t *polling;   /* owned by the session (NULL until used) */
    ag__eio_transport_t *sse;       /* owned by the session (NULL until used) */
    /* control packets and (echo mode) messages waiting for a writable transport */
    ag__eio_out_t *outbox;
    size_t outbox_len, outbox_cap, outbox_bytes;
    h2o_timeout_entry_t ping_timer, pong_deadline, upgrade_deadline, noop_tick, finish;
    uint64_t ping_due;          /* loop ms at which the last ping was due (a lagging loop sends it later) */
    const ag_disconnect_t *why; /* why the session closed (the first reason), NULL while open */
    /* the message rate of what no connection counts (socket.io and echo sessions; README "Limits") */
    ag_bucket_t in_rate;
    int rate_exempt;
};

/* The node's engine.io state (s->eio). */
typedef struct st_ag__eio_node_t {
    ag_server_t *server;
    ag_map_t sessions;   /* sid -> session */
    ag_ptrmap_t watched; /* an HTTP/1 socket -> the held GET reading it (eio_polling.c) */
    h2o_timeout_t ping_interval, ping_timeout, upgrade_timeout, keepalive, hundred_ms;
    h2o_timeout_t poll_sleep; /* servers.websocket.server.pollSleepMs (eio_polling.c) */
    h2o_timeout_entry_t trim; /* gives the heap's free pages back after polls went to sleep (eio_polling.c) */
    h2o_linklist_t sse_rings; /* every non-empty SSE replay ring of the node, written to longest ago first (eio_sse.c) */
    /* Scratch for the answer or event being written (eio_polling.c, eio_sse.c): reused from one to the next, so a
     * fan-out allocates nothing per recipient. A write nested in another (a close's hooks may send to another
     * connection) gets buffers of its own: ag__eio_scratch_get / _put. */
    ag_eio_buf_t scratch_payload, scratch_event;
    int scratch_busy;
    /* general.ioUring: the sockets the node writes itself (HTTP/1.x SSE streams, direct polling answers) given bytes in
     * this loop iteration wait here for one zero timeout that sends them together (eio_batch.c) */
    int batching; /* 1: yes (the ring is made at the first batch), -1: off, or the kernel refused io_uring */
    h2o_linklist_t batch;
    h2o_timeout_entry_t batch_entry;
    ag_batch_send_t *ring;
    struct st_ag__eio_batched_t **picked; /* the sockets of a submit and their results: BATCH_MAX each, with the ring */
    ssize_t *results;
    h2o_linklist_t directs; /* the node's direct polling connections (eio_polling_direct.c) */
} ag__eio_node_t;

/* One socket's bytes in the node's batch (eio_batch.c): embedded in its writer. The batch sends what buf holds in an
 * io_uring submit with other sockets' and takes off its front what the socket took (counted in sock->bytes_written and
 * through sent); then after() runs once, off the list: the writer goes on as after a completed write (buf empty) or
 * gives the rest to h2o_socket_write. */
typedef enum { AG__EIO_BATCH_SSE = 0, AG__EIO_BATCH_POLL } ag__eio_batch_kind_t;
typedef struct st_ag__eio_batched_t {
    h2o_linklist_t link; /* in the node's batch while waiting for it */
    h2o_socket_t *sock;
    ag_eio_buf_t *buf;
    ag__eio_batch_kind_t kind; /* whose metrics */
    /* 1 when h2o would write now (plain TCP, no write in flight, bytes waiting): else it only waits for after() */
    int (*batchable)(struct st_ag__eio_batched_t *e);
    void (*sent)(struct st_ag__eio_batched_t *e, size_t n); /* may be NULL */
    void (*after)(struct st_ag__eio_batched_t *e);
} ag__eio_batched_t;
/* Whether the node batches (general.ioUring, the kernel allows it). */
int ag__eio_batching(ag__eio_node_t *n);
/* e joins this iteration's batch (no-op when it is in it). */
void ag__eio_batch_add(ag__eio_node_t *n, ag__eio_batched_t *e);
/* e leaves the batch (its writer writes or goes away now). */
void ag__eio_batch_remove(ag__eio_batched_t *e);
void ag__eio_batch_node_init(ag__eio_node_t *n);
/* Every socket still waiting is given to its writer's after() with batching off, then the ring goes. */
void ag__eio_batch_node_dispose(ag__eio_node_t *n);

/* The node's scratch buffers when free (*shared = 1), else own's (empty: the caller's locals); give both back with _put. */
void ag__eio_scratch_get(ag__eio_node_t *n, ag_eio_buf_t *own, ag_eio_buf_t **payload, ag_eio_buf_t **event, int *shared);
void ag__eio_scratch_put(ag__eio_node_t *n, ag_eio_buf_t *payload, ag_eio_buf_t *event, int shared);

void ag__eio_session_addref(ag__eio_session_t *s);
void ag__eio_session_release(ag__eio_session_t *s);
/* A packet read by transport t (current or probe). */
void ag__eio_on_packet(ag__eio_session_t *s, ag__eio_transport_t *t, const ag_eio_packet_t *pkt);
/* A message the transport handles itself (a WebSocket PING) counts against the message rate: 1 = go on, 0 = over it
 * (the session may be closing). Packets count in ag__eio_on_packet. */
int ag__eio_inbound_control(ag__eio_session_t *s);
/* Decodes a polling/SSE POST body and dispatches it to t; returns 0, or -1 on a parse error (the session closed).
 * octets: the body is protocol 3's binary payload (an application/octet-stream POST), else text in the session's
 * protocol. */
int ag__eio_on_payload(ag__eio_session_t *s, ag__eio_transport_t *t, const char *body, size_t len, int octets);
/* Appends one packet to a polling payload in the session's protocol; octets: as protocol 3's binary payload (the
 * whole answer must then be in that encoding). */
int ag__eio_payload_append(const ag__eio_session_t *s, ag_eio_buf_t *b, int type, const char *data, size_t len, int binary,
                           int octets);
/* What the current transport holds unsent (bytes, frames) counts, with the session's outbox, against the
 * slow-consumer bound (server/conn.h). Returns 1 when that closed the session's consumer as a slow consumer. */
int ag__eio_note_backlog(ag__eio_session_t *s, size_t bytes, size_t frames);
/* Transport t can take packets now, or the upper has frames: writes what it can. */
void ag__eio_on_writable(ag__eio_session_t *s);
/* A message for the client through the session's own outbox (echo), bounded like a connection's queue; the frame is
 * borrowed. */
void ag__eio_send_message(ag__eio_session_t *s, ag_frame_t *f);
/* The uppers of eio_upper.c: the logical connection, and echo. */
void ag__eio_attach_conn(ag__eio_session_t *s, const ag_conn_info_t *info);
void ag__eio_attach_echo(ag__eio_session_t *s, const ag_conn_info_t *info);
/* Transport t is gone (socket closed) for why; losing the current transport closes the session for that reason. */
void ag__eio_transport_gone(ag__eio_session_t *s, ag__eio_transport_t *t, const ag_disconnect_t *why);
/* Closes the session for why (the first reason stays, and is what the connection above learns); send_close: write the
 * close packet first where the transport can take it. */
void ag__eio_session_close(ag__eio_session_t *s, const ag_disconnect_t *why, int send_close);
/* Closes the session the way engine.io closes one by itself: the close packet only where the transport is not a
 * WebSocket (engine.io 6.6 just closes a WebSocket). */
void ag__eio_session_close_self(ag__eio_session_t *s, const ag_disconnect_t *why);
/* The open packet JSON (without the "0") for this session; upgrades depends on the handshake transport. */
size_t ag__eio_open_json(ag__eio_session_t *s, ag__eio_kind_t kind, int sse_offered, char *out, size_t cap);
/* A session in the sid table with no transport and no upper yet: the handshake (and the unit tests) put them in
 * place. NULL when out of memory. */
ag__eio_session_t *ag__eio_session_new(ag_server_t *server, int rate_exempt);
/* t becomes the upgrade candidate; it is closed after upgradeTimeout unless the client sends "5" on it. */
void ag__eio_probe_start(ag__eio_session_t *s, ag__eio_transport_t *t);
/* Starts the session's heartbeat once its first transport is in place. */
void ag__eio_session_start(ag__eio_session_t *s, ag__eio_transport_t *t);
ag__eio_node_t *ag__eio_node(ag_server_t *server);

/* HTTP helpers: CORS headers, error answers. */
void ag__eio_add_common_headers(h2o_req_t *req);
void ag__eio_respond_error(h2o_req_t *req, int code);

/* Held responses, shared by polling GETs and SSE streams (eio_polling.c). Allocated in the request's pool; the
 * request's pool destructor calls on_dispose(h, premature) last, premature when the request died before the final
 * send (client gone). */
typedef struct st_ag__eio_held_t ag__eio_held_t;
struct st_ag__eio_held_t {
    ag__eio_node_t *node;
    h2o_req_t *req;
    h2o_generator_t gen;
    void *owner;
    void (*on_proceed)(ag__eio_held_t *h); /* streaming: the previous write is out */
    void (*on_dispose)(ag__eio_held_t *h, int premature);
    void (*on_dropped)(ag__eio_held_t *h); /* the watched socket saw EOF or an error */
    ag_eio_buf_t acc, out;
    int sending, final, done;
    int chunked;         /* a stream over HTTP/1.1 that frames its own chunks (see ag__eio_held_start_stream) */
    char chunk_head[20]; /* the size line of the chunk being written */
    size_t written;
    h2o_socket_t *watched; /* HTTP/1 socket watched for the client going away (polling GET) */
};
ag__eio_held_t *ag__eio_held_create(h2o_req_t *req, void *owner, void (*on_proceed)(ag__eio_held_t *),
                                    void (*on_dispose)(ag__eio_held_t *, int));
/* Streaming (SSE): sends the headers now; then ag__eio_held_write appends and writes when the socket takes it. */
void ag__eio_held_start_stream(ag__eio_held_t *h);
int ag__eio_held_write(ag__eio_held_t *h, const char *data, size_t len);
/* Ends a stream after what is buffered. */
void ag__eio_held_finish(ag__eio_held_t *h);

/* --- direct polling connections (eio_polling_direct.c) ---
 *
 * A polling session's HTTP/1.1 keep-alive connection that the node reads and answers itself once a held GET on it was
 * answered (servers.websocket.server.pollDirect). What the connection keeps of the request that made it direct (its
 * path, its Origin and the CORS lines answered to it) is an info: malloc'd, owned by whoever holds it. */
typedef struct st_ag__eio_direct_t ag__eio_direct_t;
typedef struct st_ag__eio_direct_info_t ag__eio_direct_info_t;
/* Adds the CORS lines to req's response (as ag__eio_add_common_headers does) and returns what a direct connection keeps
 * of req, or NULL when req's connection may not become one (pollDirect off, not HTTP/1.1 keep-alive, a body, the
 * cluster's listener or a request a node forwarded, JSONP or octets, the session closed or upgraded, stopping). */
ag__eio_direct_info_t *ag__eio_direct_cors(ag__eio_session_t *s, h2o_req_t *req);
void ag__eio_direct_info_free(ag__eio_direct_info_t *info);
/* Answers req (200, its headers set, body in its pool) through h2o_http1_upgrade with Content-Length: once h2o wrote it
 * the socket is a direct connection of s. Takes info. */
void ag__eio_direct_take(ag__eio_session_t *s, h2o_req_t *req, ag__eio_direct_info_t *info, h2o_iovec_t body);
/* A socket h2o let go whose answer is out (a sleeper's) becomes a direct connection of s, what the client sent since in
 * its buffer. Takes info. */
void ag__eio_direct_adopt(ag__eio_session_t *s, h2o_socket_t *sock, struct timeval connected_at, ag__eio_direct_info_t *info);
/* The answer to the GET d holds (data borrowed; NULL: none, the connection closes). */
void ag__eio_direct_answer(ag__eio_direct_t *d, const char *data, size_t len);
/* Every direct connection's at node dispose (the loop is not run again). */
void ag__eio_direct_node_dispose(ag__eio_node_t *n);
/* eio_polling.c: d holds a GET of s's polling transport now (no other GET is held); d's GET was dropped. */
void ag__eio_polling_direct_get(ag__eio_session_t *s, ag__eio_direct_t *d);
void ag__eio_polling_direct_dropped(ag__eio_session_t *s, ag__eio_direct_t *d);
/* 1 when the session's polling transport holds no GET (an h2o one, a sleeper, a direct one) and is open. */
int ag__eio_polling_direct_may_get(ag__eio_session_t *s);
/* eio_polling_match.c: the check of a direct connection's next request, on bytes alone. What it must be (borrowed;
 * sid NULL: nothing is, the session is gone): */
typedef struct {
    const char *path; /* the path before '?' of the request that made the connection direct */
    size_t path_len;
    const char *sid;    /* the session's id, compared byte for byte with the query's */
    const char *origin; /* its Origin, when has_origin: the same one and only it, else none */
    size_t origin_len;
    int has_origin;
    int vary; /* the CORS lines hold Vary: an MSIE user agent goes to h2o (its Cache-Control) */
    int log;  /* general.accessLog: a request naming a proxy's client address goes to h2o */
} ag__eio_direct_want_t;
/* What the head of a happy case holds (pointers into the bytes given). */
typedef struct {
    size_t len; /* of the head: consume that much */
    const char *path, *ua;
    size_t path_len, ua_len;
    int gzip; /* it accepts gzip */
} ag__eio_direct_head_t;
/* A head longer than this (still incomplete) goes to h2o, which answers it. */
#define AG__EIO_DIRECT_HEAD_MAX 8192
/* The request at the start of buf[0, len): 1, the happy case (GET, HTTP/1.1, want's path and sid with transport=polling
 * and EIO, no j, no body, Upgrade, Expect or Transfer-Encoding, Connection only keep-alive, at most one Content-Length
 * and only 0, at most 32 header lines, want's Origin, not a request a node forwarded), *head filled; 0: incomplete,
 * wait for more (*prevlen keeps what was scanned: start it at 0 and pass it back); -1: anything else, for h2o. */
int ag__eio_direct_match(const char *buf, size_t len, size_t *prevlen, const ag__eio_direct_want_t *want,
                         ag__eio_direct_head_t *head);
/* ASCII case-insensitive equality of s[0, len) and lit; "; MSIE " in a user agent. */
int ag__eio_direct_ci_is(const char *s, size_t len, const char *lit);
int ag__eio_direct_has_msie(const char *ua, size_t len);
/* eio.c: the session's pong deadline ran out, whether or not its timer fired yet. */
int ag__eio_heartbeat_expired(ag__eio_session_t *s);

/* Polling answers of at least this many bytes are gzipped for a client that accepts it (eio_polling.c). */
#define AG__EIO_GZIP_THRESHOLD 1024
/* 1 when an Accept-Encoding value names gzip. */
int ag__eio_accepts_gzip(const char *v, size_t len);
/* gzip of body into out (its bytes replaced): 1, or 0 when compression failed (the caller sends it plain). */
int ag__eio_gzip(ag_eio_buf_t *out, const char *body, size_t len);

/* Transport constructors and request entry points. */
void ag__eio_polling_destroy(ag__eio_transport_t *t);
void ag__eio_polling_handshake(ag__eio_session_t *s, h2o_req_t *req, int sse_offered);
void ag__eio_polling_get(ag__eio_session_t *s, h2o_req_t *req);
void ag__eio_post(ag__eio_session_t *s, ag__eio_transport_t *t, h2o_req_t *req);
void ag__eio_ws_accept(ag_server_t *server, ag__eio_session_t *s, h2o_req_t *req, const char *key);
void ag__eio_sse_destroy(ag__eio_transport_t *t);
void ag__eio_sse_get(ag__eio_session_t *s, h2o_req_t *req);

#endif
