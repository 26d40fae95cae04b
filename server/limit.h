/*
 * Limits a stranger cannot talk the node out of (README "Limits"):
 * - TCP connections per peer address (servers.web.maxConnectionsPerIp), counted from accept to close; the node-wide
 *   count (servers.web.maxConnections) is kept here too, the listener that enforces it is server/server_accept.c's;
 * - new realtime connections (handshakes) per address and second (servers.web.handshakeRate / handshakeBurst);
 * - the token bucket behind the per-connection message rate (servers.websocket.server.messageRate / messageBurst).
 *
 * Addresses listed in general.trustedProxies (loopback by default) are exempt from all three: a proxy carries many
 * clients, and such a peer may claim any address in X-Forwarded-For anyway. An IPv4 address counts on its own; an
 * IPv6 address by its /64, the block one subscriber usually holds.
 *
 * Per-address state lives in a table of at most ag_limits_t.max_peers entries. An entry with an open connection stays;
 * one without is kept in least-recently-seen order, expires once its handshake bucket would be full again, and is the
 * first one evicted when the table is full. The table is sized above the node's connection cap, so an entry with
 * open connections never has to be evicted.
 */
#ifndef AG_LIMIT_H
#define AG_LIMIT_H

#include <sys/socket.h>
#include "bucket.h"
#include "node.h"

#define AG_PEER_KEY_LEN 64

typedef struct st_ag_limits_t ag_limits_t;
typedef struct st_ag_peer_t {
    char key[AG_PEER_KEY_LEN];
    uint32_t conns; /* open TCP connections from this address */
    ag_bucket_t handshakes;
    uint64_t seen_ms;
    h2o_linklist_t idle; /* in ag_limits_t.idle while conns == 0 */
    ag_limits_t *owner;
} ag_peer_t;

struct st_ag_limits_t {
    ag_server_t *server;
    ag_map_t peers; /* key -> ag_peer_t* */
    size_t max_peers;
    h2o_linklist_t idle; /* entries without a connection, least recently seen first */
    ag_peer_t exempt;    /* stands for every connection not counted per address */
    size_t tcp_conns;    /* accepted TCP connections not closed yet */
    size_t max_tcp;      /* the node's cap in effect (servers.web.maxConnections, bounded by the descriptor limit) */
    h2o_timeout_entry_t sweep;
};

/* Creates the node's limits (after the h2o context exists); max_tcp is the connection cap in effect. */
ag_limits_t *ag_limits_create(ag_server_t *s, size_t max_tcp);
void ag_limits_destroy(ag_limits_t *l);

/* The key of an address: IPv4 dotted (also for IPv4-mapped IPv6), IPv6 as its /64 ("2001:db8:1:2::/64"), anything
 * else (a forwarded address that does not parse) as its text, truncated. */
void ag_limits_key_text(const char *ip, char key[AG_PEER_KEY_LEN]);
/* The textual address of a socket address ("" when it is not IP); ip holds 64 bytes. */
void ag_limits_sockaddr_text(const struct sockaddr *sa, char ip[64]);
/* Whether limits keyed by address spare ip: it is in general.trustedProxies (an address or a CIDR range there). */
int ag_limits_exempt(const ag_server_t *s, const char *ip);

/* A TCP connection from sa is accepted: counts it (node and address) and returns what ag_limits_tcp_closed() takes,
 * or NULL when its address is at servers.web.maxConnectionsPerIp (nothing counted). */
ag_peer_t *ag_limits_tcp_open(ag_limits_t *l, const struct sockaddr *sa);
void ag_limits_tcp_closed(ag_peer_t *p);

/* A new realtime connection is asked for by req (Primus upgrade, engine.io or socket.io handshake): 1 when its
 * (resolved) address may open one now, 0 when it is over servers.web.handshakeRate (counted and logged; answer with
 * ag_limits_respond_refused()). */
int ag_limits_handshake(h2o_req_t *req);
/* 429 Too Many Requests, text/plain, with Retry-After; an upgrade request's connection is closed after it. */
void ag_limits_respond_refused(h2o_req_t *req);

/* One inbound message against bucket b under servers.websocket.server.messageRate / messageBurst (exempt: the
 * sender's address is a trusted proxy's). Counts refusals in the node's stats. */
ag_bucket_result_t ag_limits_message(ag_server_t *s, ag_bucket_t *b, int exempt);

#endif
