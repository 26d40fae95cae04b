/*
 * The cluster: which node owns an engine.io session, forwarding of requests to that node (no sticky sessions), and
 * carrying a push to the node that holds its connection. It talks to the store only through its interface
 * (server/store/store.h: node_register, node_lookup, node_leave, publish, on_node_event); on a store without a node
 * registry (memory) it is inert and every call below means "this node".
 *
 * Session ownership. Every node has a random 8-character tag and a random token per boot, registered with its address
 * ("host:port") in the store's registry, which keeps it alive with the node heartbeat (redis.nodeTtl). An engine.io
 * sid starts with its owner's tag (ag_cluster_sid_stamp); the sid keeps engine.io's 22 URL-safe characters, so stock
 * clients see nothing new. A request whose sid names another node is forwarded to the address that node registered,
 * never to one taken from the request:
 *   - polling GET/POST and the SSE stream and its POSTs: HTTP/1.1 through h2o's proxy (a fresh upstream connection per
 *     request, response streamed back as it comes, so a held GET or an SSE stream stays held/streaming);
 *   - a WebSocket upgrade: the handshake is proxied and, on 101, both sockets are spliced (h2o's tunnel).
 * A plain /primus WebSocket is one TCP connection: it lives where it lands and is never forwarded, except the new
 * connection of a resume, which names the node of the connection it resumes (AG_CLUSTER_RESUME_PARAM).
 * A sid whose owner is not registered (dead, never stamped, or the registry cannot be read) is handled here, where it
 * is unknown: the client gets engine.io's "Session ID unknown" and reconnects.
 *
 * The forwarding hook runs as an h2o handler on the engine.io paths, registered before the transports
 * (ag_cluster_register, called by server/server.c), so the engine.io handler needs exactly one call: ag_cluster_sid_stamp
 * when it creates a sid.
 */
#ifndef AG_CLUSTER_H
#define AG_CLUSTER_H

#include <jansson.h>
#include "node.h"

typedef struct st_ag_cluster_t ag_cluster_t;

#define AG_CLUSTER_TAG_LEN 8
/* Request header a forwarding node adds, with the owner's token as the registry gives it: the owner recognises a node's
 * forward by its own token and never forwards it again. Without that token the header is removed and means nothing. */
#define AG_CLUSTER_FORWARDED_HEADER "x-actiongate-forwarded"

/* Node lifecycle (server/server.c). init: after the store exists; register: adds the routing handler on the engine.io
 * path (before the transports); listening: the listener is bound, the node's address can be published. */
int ag_cluster_init(ag_server_t *s, char *errbuf, size_t errlen);
void ag_cluster_register(ag_server_t *s);
void ag_cluster_listening(ag_server_t *s);
void ag_cluster_stop(ag_server_t *s);
void ag_cluster_dispose(ag_server_t *s);

/* Writes this node's tag over the first AG_CLUSTER_TAG_LEN characters of a freshly generated sid (NUL-terminated,
 * URL-safe, at least AG_CLUSTER_TAG_LEN long). No-op without a cluster. */
void ag_cluster_sid_stamp(ag_server_t *s, char *sid);
/* A graceful restart (README "Resume"): the node takes back the tag it had before the stop (tag: AG_CLUSTER_TAG_LEN
 * characters of the sid alphabet), so that what its clients were told to name (a resume's route, their sids) leads
 * here again; it is registered anew. Call before the loop runs. 0, AG_EINVAL (not a tag), AG_ENOENT (no cluster). */
int ag_cluster_adopt_tag(ag_server_t *s, const char *tag);
/* 1 when tag is AG_CLUSTER_TAG_LEN characters of the alphabet tags are made of, else 0. */
int ag_cluster_is_tag(const char *tag);
/* The owner tag of a sid into tag (AG_CLUSTER_TAG_LEN + 1 bytes). 0, or AG_EINVAL when the sid is too short. */
int ag_cluster_owner_of_sid(const char *sid, char tag[AG_CLUSTER_TAG_LEN + 1]);
/* The query parameter a resume's new connection carries with the tag the resumable connection was given: its first
 * request (a /primus WebSocket upgrade, an engine.io handshake) is forwarded to that node as a sid's would be. */
#define AG_CLUSTER_RESUME_PARAM "resume"
/* This node's tag (a sid's first characters), or NULL without a cluster (one node: every connection is here). */
const char *ag_cluster_tag(ag_server_t *s);
/* Whether sid belongs to this node (always true without a cluster). */
int ag_cluster_is_local_sid(ag_server_t *s, const char *sid);
/* 1 when a forward to the node with sid tag `tag` failed lately (it refused the connection: dead, its route not yet
 * expired). */
int ag_cluster_is_unreachable(ag_server_t *s, const char *tag);

/* Cross-node push (server/push.c uses it for connections that are not local): publishes obj (borrowed) for connection
 * conn_id on the cluster channel, and the node that holds it hands it to its push receiver. 0, AG_ENOENT without a
 * cluster, AG_ENOMEM. */
int ag_cluster_forward_push(ag_server_t *s, const char *conn_id, const json_t *obj);
/* Delivers a push that arrived for a connection of this node: 0 when delivered, else an AG_E* code. */
typedef int (*ag_cluster_push_receiver_fn)(ag_server_t *s, const char *conn_id, const json_t *obj);
/* Who delivers pushes arriving from other nodes (server/push.c registers itself); the cluster knows no module above
 * it by name. */
void ag_cluster_set_push_receiver(ag_server_t *s, ag_cluster_push_receiver_fn fn);
/* An actionhero cluster RPC ("do" envelope, redis.compat actionhero) that arrived on the store; payload borrowed. */
typedef void (*ag_cluster_rpc_receiver_fn)(ag_server_t *s, const char *payload, size_t len);
/* Who answers those (server/ahrpc.c registers itself). */
void ag_cluster_set_rpc_receiver(ag_server_t *s, ag_cluster_rpc_receiver_fn fn);

/*
 * Calls to every node: the server API's push, disconnect and node list (server/serverapi.c) run on each node of the
 * cluster and gather the answers. The call runs here first; when that settles it (enough), nothing travels. Otherwise
 * the registry's live nodes are read (store node_list), the call is published once on the cluster channel, each
 * other node runs it through its call receiver and publishes its answer on this node's reply channel, and done runs
 * when every node listed answered, when an answer is enough, or at the deadline (serverApi.timeout), with what came.
 * A node the registry still lists but that died is simply silent until its heartbeat expires (redis.nodeTtl).
 * Nothing is stored per connection: the cost is per call, not per connect.
 */
typedef struct st_ag_cluster_call_t ag_cluster_call_t;
/* Runs a call on this node: call borrowed; returns the answer, a new reference to a JSON object (NULL: no answer). */
typedef json_t *(*ag_cluster_call_receiver_fn)(ag_server_t *s, const json_t *call);
/* Who runs calls (server/push.c registers itself). */
void ag_cluster_set_call_receiver(ag_server_t *s, ag_cluster_call_receiver_fn fn);
/* Whether one answer settles the call (a push found its connection); may be NULL (never). */
typedef int (*ag_cluster_call_enough_fn)(void *data, const json_t *answer);
/* The end of a call, once. nodes: array of {"id", "address"}, this node first, then the live nodes the registry listed;
 * answers: object node id -> answer; both borrowed for the call. err: NULL, or why the other nodes could not be asked
 * (the registry cannot be read, out of memory): answers then hold this node's only. Without a cluster, nodes and
 * answers hold this node only and err is NULL. */
typedef void (*ag_cluster_call_done_fn)(void *data, const json_t *nodes, const json_t *answers, const char *err);
/* Starts a call (call borrowed: an object the receivers understand). Returns the call while it waits for other nodes,
 * or NULL when done already ran (before this returned: this node settled it, there is no cluster, or it failed). */
ag_cluster_call_t *ag_cluster_call(ag_server_t *s, const json_t *call, ag_cluster_call_enough_fn enough,
                                   ag_cluster_call_done_fn done, void *data);
/* The caller is gone (its request ended): done will not run. Call it once for a call done has not ended (after done,
 * the handle is gone). */
void ag_cluster_call_cancel(ag_cluster_call_t *call);

/* Counters for tests and logs. */
typedef struct st_ag_cluster_stats_t {
    uint64_t forwarded_http, forwarded_ws, unknown_owner, forged_header, pushes_in, pushes_out;
    uint64_t calls_out, calls_in, call_timeouts; /* calls published, run for other nodes, ended by the deadline */
} ag_cluster_stats_t;
const ag_cluster_stats_t *ag_cluster_stats(ag_server_t *s);

#endif
