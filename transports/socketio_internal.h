/*
 * What the files of the socket.io layer share, and nothing outside it includes: socketio.c (the layer over one engine.io
 * session: the request table, translation, events, the module), socketio_connect.c (the CONNECT: token, connect hook,
 * the connection made) and socketio_recovery.c (connection state recovery). socketio.h is the layer's interface.
 */
#ifndef AG_SOCKETIO_INTERNAL_H
#define AG_SOCKETIO_INTERNAL_H

#include "socketio.h"
#include "backend.h"

/* Unanswered requests of one connection; a client over it is closed. */
#define AG__SIO_MAX_PENDING 1024

struct st_ag_sio_t {
    ag_server_t *server;
    const ag_sio_lower_t *lower;
    void *lower_self;
    ag_conn_t *conn; /* NULL until the client CONNECTs to "/", and again after it DISCONNECTs */
    char *fingerprint;
    char remote_ip[64];
    int remote_port;
    const char *transport_name;
    ag_frame_t **out; /* packets that go before the connection's queue (CONNECT replies), or were drained at close */
    size_t out_head, out_len, out_cap;
    h2o_timeout_entry_t connect_timer;
    int creating;                 /* inside ag_conn_create: the welcome is queued before the CONNECT reply exists */
    int closing;                  /* the engine.io session was asked to close */
    int legacy;                   /* socket.io protocol 4 (socket.io-client 2.x over engine.io protocol 3) */
    unsigned drop;                /* attachments of a refused binary packet still to read (and drop) */
    int64_t drop_ack;             /* that packet's ack id for the refusal, or -1: a "response" event */
    const ag_disconnect_t *why;   /* the layer's own reason for closing (a client that broke the protocol), or NULL */
    ag_backend_call_t *hook_call; /* the connect hook, asked at CONNECT */
    json_t *handshake;            /* what the engine.io handshake tells the connect hook, or NULL */
    char *hook_fp;                /* the fingerprint the CONNECT named, while the hook works */
    json_t *hs_claims;            /* the engine.io handshake's verified token, or NULL */
    json_t *hook_claims;          /* the CONNECT's token claims, while the hook works */
    char *want_pid, *want_offset; /* what the CONNECT presented for a recovery (untrusted), until it is answered */
    int recovering;               /* the CONNECT answer waits for the recovery: nothing of the connection goes out */
    ag__sio_tracked_t rec_rooms[AG__SIO_TRACKED_ROOMS]; /* the client's offsets, read, while it recovers */
    size_t num_rec_rooms;
    uint64_t rec_seq;
    uint64_t ev_hash; /* the EVENT being handled, for the requests it makes */
};

/* socketio.c */
/* The connection's transport: the layer, to the logical connection it carries. */
extern const ag_transport_t ag__sio_transport;
/* Queues a packet (its reference is taken; NULL: nothing) ahead of the connection's, at the front or the back. */
void ag__sio_out_push(ag_sio_t *sio, ag_frame_t *f, int front);
/* Tells the engine.io session under the layer that packets are ready (not while the connection is being made). */
void ag__sio_lower_kick(ag_sio_t *sio);
/* The request table: mid < 0 takes the connection's next messageId; NULL on ENOMEM. */
ag__sio_pending_t *ag__sio_pending_add(ag__sio_state_t *st, int64_t mid, int64_t ack, int swallow, const char *room, int current);
ag__sio_pending_t *ag__sio_pending_find(ag__sio_state_t *st, int64_t mid);
/* The current room of the single-room model (copied; NULL: none). */
void ag__sio_set_room(ag__sio_state_t *st, const char *room);

/* socketio_connect.c */
/* A CONNECT to "/" (socket.io 2's implied one too): the token, the connect hook, then the connection. */
void ag__sio_on_connect(ag_sio_t *sio, const ag_sio_packet_t *p);
/* The CONNECT reply for c (pid: its recovery id, or NULL / empty when it cannot be recovered), in front of what c queued. */
void ag__sio_connect_answer(ag_sio_t *sio, const ag_conn_t *c, const char *pid);

/* socketio_recovery.c */
void ag__sio_make_recoverable(ag_sio_t *sio, ag_conn_t *c);
/* Forgets what the CONNECT presented for a recovery. */
void ag__sio_want_clear(ag_sio_t *sio);
/* The connection's carrier_state_save and carrier_state_brief (conn.h). */
json_t *ag__sio_state_save(const void *state);
size_t ag__sio_state_brief(const void *state, char *buf, size_t cap);
void ag__sio_recover(ag_sio_t *sio);
int ag__sio_reemitted(ag_sio_t *sio, ag__sio_state_t *st, int64_t ack);

#endif
