/*
 * What the files of the cluster module share, and nothing outside it includes: cluster.c (sids and node tags,
 * forwarding a request to the node that owns its session, push between nodes, the node registry) and cluster_call.c
 * (calls to every node: the registry read, the publish, the replies, the deadline).
 */
#ifndef AG_CLUSTER_INTERNAL_H
#define AG_CLUSTER_INTERNAL_H

#include "cluster.h"

/* the per-boot secret of a node: 22 characters of the sid alphabet, 132 random bits */
#define AG__CLUSTER_TOKEN_LEN 22
/* a node id is at most this long (ag_server_t.node_id) */
#define AG__CLUSTER_NODE_ID_MAX 64

struct st_ag_cluster_t {
    ag_server_t *server;
    ag_store_t *store;
    int clustered; /* the store has a node registry */
    char tag[AG_CLUSTER_TAG_LEN + 1];
    char token[AG__CLUSTER_TOKEN_LEN + 1];
    char address[300];
    uint64_t ttl_ms;
    ag_map_t routes;      /* tag -> route_t* */
    ag_map_t unreachable; /* tag -> (uintptr_t) ms when forwarding to it failed */
    h2o_http1client_ctx_t client_ctx;
    h2o_timeout_t io_timeout, ws_timeout;
    int client_ready;
    h2o_linklist_t lookups;
    ag_cluster_push_receiver_fn push_receiver;
    ag_cluster_rpc_receiver_fn rpc_receiver;
    ag_cluster_call_receiver_fn call_receiver;
    /* calls waiting for other nodes: all of them in open_calls; by id, those published, in calls */
    h2o_linklist_t open_calls;
    size_t num_open_calls;
    ag_map_t calls;
    uint64_t next_call;
    h2o_timeout_t call_timeout;
    char reply_channel[AG__CLUSTER_NODE_ID_MAX + 8]; /* "_reply:<node id>": where the other nodes answer this node's calls */
    ag_cluster_stats_t stats;
};

struct st_ag_cluster_call_t {
    ag_cluster_t *c; /* NULL once the cluster is gone */
    char id[24];
    json_t *call, *nodes, *answers;
    size_t expected, answered; /* other nodes listed, and those of them that answered */
    ag_cluster_call_enough_fn enough;
    ag_cluster_call_done_fn done;
    void *data;
    h2o_timeout_entry_t timer;
    h2o_linklist_t link; /* in c->open_calls while it waits */
    int refs;            /* the caller's until done or cancel, the registry read's while it is in flight */
    int finished;
    int published; /* in c->calls */
};

/* No longer waiting: off the timer, the id map and the open list (also for the calls a disposed cluster leaves). */
void ag__cluster_call_end(ag_cluster_call_t *k);
/* Another node's call (a "call" on the cluster channel): run here, answered on its reply channel. */
void ag__cluster_call_in(ag_cluster_t *c, const json_t *msg);
/* A node's answer to one of this node's calls, from this node's reply channel. */
void ag__cluster_reply_in(ag_cluster_t *c, const json_t *msg);

#endif
