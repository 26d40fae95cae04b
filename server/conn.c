#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "limit.h"
#include "node.h"
#include "outbox.h"

const ag_disconnect_t AG_DISCONNECT_PEER_CLOSED = {1000, "transport close", 1};
const ag_disconnect_t AG_DISCONNECT_TRANSPORT_ERROR = {1006, "transport error", 1};
const ag_disconnect_t AG_DISCONNECT_PROTOCOL_ERROR = {1002, "protocol error", 1};
const ag_disconnect_t AG_DISCONNECT_HEARTBEAT = {1000, "heartbeat timeout", 1};
const ag_disconnect_t AG_DISCONNECT_SLOW = {1008, "slow consumer", 1};
const ag_disconnect_t AG_DISCONNECT_TOO_BIG = {1009, "message too big", 1};
const ag_disconnect_t AG_DISCONNECT_QUIT = {1000, "quit", 0};
const ag_disconnect_t AG_DISCONNECT_SERVER = {1000, "closed by the server", 0};
const ag_disconnect_t AG_DISCONNECT_KICKED = {1012, "kicked", 1};
const ag_disconnect_t AG_DISCONNECT_REFUSED = {4401, "refused by the backend", 0};
const ag_disconnect_t AG_DISCONNECT_SERVER_ERROR = {1011, "server error", 1};
const ag_disconnect_t AG_DISCONNECT_SHUTDOWN = {1001, "going away", 1};
const ag_disconnect_t AG_DISCONNECT_SHUTDOWN_FINAL = {1001, "going away", 0};
const ag_disconnect_t AG_DISCONNECT_RATE = {1008, "message rate exceeded", 0};
const ag_disconnect_t AG_DISCONNECT_TOKEN_REFUSED = {4401, "token refused", 0};
const ag_disconnect_t AG_DISCONNECT_TOKEN_EXPIRED = {4408, "token expired", 1};

/* The connection a client left for the one it resumed (README "Resume"): counted as "other". */
static const ag_disconnect_t DISCONNECT_RESUMED = {1000, "resumed", 0};

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
} resume_t;

/* What a connection being taken over may hold at most: past it, it cannot be resumed whole. */
#define HELD_MAX 4096

/* The node's away connections: one list per node, in the order they went away, as the window is the same for all. */
struct st_ag_away_t {
    h2o_timeout_t window;
    h2o_timeout_t now; /* away connections closed while away: their reference goes on the next pass */
    /* a store that keeps resumable connections (rconn_put): their records are kept alive every half window */
    h2o_timeout_t touch;
    h2o_timeout_entry_t touch_entry;
    ag_server_t *server;
};

/* --- the store's copy of a resumable connection (store.h rconn_*), so that another node can take it over --- */

/* A record outlives its last touch by a window and a half: touched every half window, it lasts a window after its node
 * died. */
static uint64_t record_ttl(const ag_server_t *s)
{
    return (uint64_t)s->config->general.resumeWindow * 3 / 2;
}

void ag_conn_token_hash(const char *token, char out[2 * 32 + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), md);
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

json_t *ag_conn_who(const ag_conn_t *c)
{
    if (c->user == NULL && c->claims == NULL && c->hook_data == NULL)
        return NULL;
    json_t *who = json_object();
    if (who == NULL)
        return NULL;
    if (c->user != NULL)
        json_object_set_new(who, "user", json_string(c->user));
    if (json_is_object(c->claims))
        json_object_set(who, "claims", c->claims);
    if (json_is_object(c->hook_data))
        json_object_set(who, "data", c->hook_data);
    return who;
}

int ag_conn_take_who(ag_conn_t *c, const json_t *who)
{
    if (!json_is_object(who))
        return AG_OK; /* none recorded: the carrier's own stands */
    json_t *user = json_object_get(who, "user"), *claims = json_object_get(who, "claims"), *data = json_object_get(who, "data");
    if (ag_conn_set_user(c, json_is_string(user) ? json_string_value(user) : NULL) != AG_OK)
        return AG_ENOMEM;
    json_decref(c->claims);
    c->claims = json_is_object(claims) ? json_deep_copy(claims) : NULL;
    json_decref(c->hook_data);
    c->hook_data = json_is_object(data) ? json_deep_copy(data) : NULL;
    c->_data_empty = c->hook_data == NULL;
    return AG_OK;
}

static void record_open(ag_conn_t *c, const char *token)
{
    ag_store_t *st = c->server->store;
    if (st->ops->rconn_put == NULL)
        return;
    char hash[2 * 32 + 1];
    ag_conn_token_hash(token, hash);
    json_t *who = ag_conn_who(c);
    char *text = who != NULL ? json_dumps(who, JSON_COMPACT) : NULL;
    json_decref(who);
    ag_store_rconn_write_t w = {.ttl_ms = record_ttl(c->server),
                                .token_hash = hash,
                                .fingerprint = c->fingerprint,
                                .who = text != NULL && strlen(text) <= AG_STORE_RCONN_WHO_MAX ? text : NULL};
    st->ops->rconn_put(st, c->id, &w);
    free(text);
}

static void record_frame(ag_conn_t *c, const ag_frame_t *f, const char *message_id)
{
    ag_store_t *st = c->server->store;
    char brief[AG_STORE_RCONN_CARRIER_MAX + 1];
    if (st->ops->rconn_put == NULL)
        return;
    size_t bl = message_id != NULL && c->carrier_state_brief != NULL && c->carrier_state != NULL
                    ? c->carrier_state_brief(c->carrier_state, brief, sizeof(brief))
                    : 0;
    ag_store_rconn_write_t w = {.ttl_ms = record_ttl(c->server),
                                .seq = c->_resume->outbox.seq,
                                .floor = c->_resume->outbox.floor,
                                .frame = f->data,
                                .frame_len = f->len,
                                .message_id = message_id,
                                .carrier = bl > 0 && bl < sizeof(brief) ? brief : NULL};
    st->ops->rconn_put(st, c->id, &w);
}

void ag_conn_record_room(ag_conn_t *c, const char *room, const char *epoch, uint64_t since)
{
    ag_store_t *st = c->server->store;
    if (c->_resume == NULL || ag_conn_is_closed(c) || st->ops->rconn_put == NULL)
        return;
    ag_store_rconn_write_t w = {.ttl_ms = record_ttl(c->server), .room = room, .epoch = epoch, .since = since};
    st->ops->rconn_put(st, c->id, &w);
}

/* One PEXPIRE per resumable connection, sent without waiting (pipelined): a live connection's record never expires,
 * however quiet the connection is. */
static void on_touch(h2o_timeout_entry_t *entry)
{
    struct st_ag_away_t *a = H2O_STRUCT_FROM_MEMBER(struct st_ag_away_t, touch_entry, entry);
    ag_server_t *s = a->server;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&s->conns, &it, &k, &v);)
        if (((ag_conn_t *)v)->_resume != NULL)
            s->store->ops->rconn_touch(s->store, k, record_ttl(s));
    h2o_timeout_link(s->loop, &a->touch, &a->touch_entry);
}

static const struct {
    const ag_disconnect_t *why;
    const char *name;
} kinds[AG_DISCONNECT_KINDS - 1] = {
    {&AG_DISCONNECT_PEER_CLOSED, "peer_closed"},
    {&AG_DISCONNECT_TRANSPORT_ERROR, "transport_error"},
    {&AG_DISCONNECT_PROTOCOL_ERROR, "protocol_error"},
    {&AG_DISCONNECT_HEARTBEAT, "heartbeat_timeout"},
    {&AG_DISCONNECT_SLOW, "slow_consumer"},
    {&AG_DISCONNECT_TOO_BIG, "message_too_big"},
    {&AG_DISCONNECT_QUIT, "quit"},
    {&AG_DISCONNECT_SERVER, "closed_by_server"},
    {&AG_DISCONNECT_SERVER_ERROR, "server_error"},
    {&AG_DISCONNECT_SHUTDOWN, "shutdown"},
    {&AG_DISCONNECT_SHUTDOWN_FINAL, "shutdown_final"},
    {&AG_DISCONNECT_RATE, "message_rate"},
    {&AG_DISCONNECT_TOKEN_REFUSED, "token_refused"},
    {&AG_DISCONNECT_TOKEN_EXPIRED, "token_expired"},
};

size_t ag_disconnect_kind(const ag_disconnect_t *why)
{
    for (size_t i = 0; i < AG_DISCONNECT_KINDS - 1; i++)
        if (kinds[i].why == why)
            return i;
    return AG_DISCONNECT_KINDS - 1;
}

const char *ag_disconnect_kind_name(size_t kind)
{
    return kind < AG_DISCONNECT_KINDS - 1 ? kinds[kind].name : "other";
}

void ag_conn_set_handler(ag_server_t *s, const ag_conn_handler_t *handler, void *data)
{
    s->conn_handler = handler;
    s->conn_handler_data = data;
}

static void resume_free(ag_conn_t *c)
{
    if (c->_resume == NULL)
        return;
    ag_outbox_dispose(&c->_resume->outbox);
    for (size_t i = 0; i < c->_resume->n_held; i++)
        ag_frame_release(c->_resume->held[i]);
    free(c->_resume->held);
    free(c->_resume);
    c->_resume = NULL;
}

static void conn_free_fields(ag_conn_t *c)
{
    resume_free(c);
    if (c->carrier_state_free != NULL)
        c->carrier_state_free(c->carrier_state);
    json_decref(c->hook_data);
    json_decref(c->handshake);
    json_decref(c->claims);
    free(c->refused);
    free(c->user);
    free(c->fingerprint);
}

ag_conn_t *ag_conn_create(ag_server_t *server, const ag_transport_t *transport, void *self, const ag_conn_info_t *info)
{
    ag_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    ag_uuid4(c->id);
    const char *fp = info->fingerprint != NULL && info->fingerprint[0] != '\0' ? info->fingerprint : c->id;
    if ((c->fingerprint = strdup(fp)) == NULL) {
        free(c);
        return NULL;
    }
    snprintf(c->remote_ip, sizeof(c->remote_ip), "%s", info->remote_ip != NULL ? info->remote_ip : "");
    c->remote_port = info->remote_port;
    c->connected_at = ag_now_ms();
    c->transport_name = info->transport_name != NULL ? info->transport_name : "websocket";
    c->server = server;
    c->_rate_exempt = ag_limits_exempt(server, c->remote_ip);
    c->accepted = info->accepted;
    c->handshake = info->handshake != NULL ? json_incref(info->handshake) : NULL;
    /* a token's sub first: the connect hook's data.user, which the backend answered knowing the claims, comes after */
    c->claims = json_is_object(info->claims) ? json_incref(info->claims) : NULL;
    json_t *sub = json_object_get(c->claims, "sub");
    /* most hooks (and every handshake without one) answer {}: an empty object per connection is ~230 bytes of an idle
     * one's heap, so it is made when first asked for */
    if (json_is_object(info->hook_data) && json_object_size(info->hook_data) == 0)
        c->_data_empty = 1;
    if ((json_is_string(sub) && ag_conn_set_user(c, json_string_value(sub)) != AG_OK) ||
        (info->refused != NULL && (c->refused = strdup(info->refused)) == NULL) ||
        (json_is_object(info->hook_data) && !c->_data_empty && ag_conn_set_data(c, info->hook_data) != AG_OK)) {
        conn_free_fields(c);
        free(c);
        return NULL;
    }
    c->_refcnt = 1;
    c->_transport = transport;
    c->_transport_self = self;
    if (ag_map_set(&server->conns, c->id, c) != AG_OK) {
        conn_free_fields(c);
        free(c);
        return NULL;
    }
    server->num_conns++;
    server->stats.connections_opened++;
    ag_debug("conn", c->id, "open via %s from %s:%d", c->transport_name, c->remote_ip, c->remote_port);
    const ag_conn_handler_t *h = server->conn_handler;
    if (h != NULL && h->on_open != NULL) {
        ag_conn_addref(c);
        h->on_open(c, server->conn_handler_data);
        ag_conn_release(c);
    }
    return c;
}

static void record_open(ag_conn_t *c, const char *token);

void ag_conn_record_who(ag_conn_t *c)
{
    /* a resumable connection's record says who it is: a node that takes it over gives it that identity again */
    if (c->_resume != NULL && !ag_conn_is_closed(c))
        record_open(c, c->_resume->token);
}

int ag_conn_set_user(ag_conn_t *c, const char *user)
{
    char *copy = NULL;
    if (user != NULL && (copy = strdup(user)) == NULL)
        return AG_ENOMEM;
    free(c->user);
    c->user = copy;
    ag_conn_record_who(c);
    return AG_OK;
}

int ag_conn_set_data(ag_conn_t *c, json_t *data)
{
    json_t *user = json_object_get(data, "user");
    if (json_is_string(user) && ag_conn_set_user(c, json_string_value(user)) != AG_OK)
        return AG_ENOMEM;
    json_decref(c->hook_data);
    c->hook_data = json_incref(data);
    c->_data_empty = 0;
    ag_conn_record_who(c);
    return AG_OK;
}

/* --- the public accessors (include/actiongate.h) --- */

const char *ag_conn_id(const ag_conn_t *c)
{
    return c->id;
}

const char *ag_conn_fingerprint(const ag_conn_t *c)
{
    return c->fingerprint;
}

const char *ag_conn_remote_ip(const ag_conn_t *c)
{
    return c->remote_ip;
}

int ag_conn_remote_port(const ag_conn_t *c)
{
    return c->remote_port;
}

const char *ag_conn_transport(const ag_conn_t *c)
{
    return c->transport_name;
}

const char *ag_conn_protocol(const ag_conn_t *c)
{
    return c->_transport != NULL && c->_transport->protocol != NULL ? c->_transport->protocol : "";
}

const char *ag_conn_user(const ag_conn_t *c)
{
    return c->user;
}

json_t *ag__conn_hook_data(ag_conn_t *c)
{
    if (c->_data_empty && c->hook_data == NULL && (c->hook_data = json_object()) != NULL)
        c->_data_empty = 0;
    return c->hook_data;
}

json_t *ag_conn_data(const ag_conn_t *c)
{
    /* the connection is the caller's to read, but the empty object it would have held since it opened is made here */
    return ag__conn_hook_data((ag_conn_t *)c);
}

uint64_t ag_conn_connected_at(const ag_conn_t *c)
{
    return c->connected_at;
}

int ag_conn_closed(const ag_conn_t *c)
{
    return ag_conn_is_closed(c);
}

ag_server_t *ag_conn_server(const ag_conn_t *c)
{
    return c->server;
}

ag_conn_t *ag_conn_find(ag_server_t *server, const char *id)
{
    ag_conn_t *c = ag_map_get(&server->conns, id);
    return c != NULL && !ag_conn_is_closed(c) ? c : NULL;
}

static void queue_clear(ag_conn_t *c)
{
    ag_frame_t *f;
    while ((f = ag_conn_shift(c)) != NULL)
        ag_frame_release(f);
}

void ag_conn_release(ag_conn_t *c)
{
    if (--c->_refcnt != 0)
        return;
    queue_clear(c);
    free(c->_queue); /* no rooms left: the consumer left them when the connection finished (on_close) */
    conn_free_fields(c);
    free(c);
}

static void away_leave(ag_conn_t *c)
{
    resume_t *r = c->_resume;
    if (r == NULL || !r->away)
        return;
    r->away = 0;
    if (h2o_timeout_is_linked(&r->expiry))
        h2o_timeout_unlink(&r->expiry);
    c->server->stats.conns_away--;
}

/* Marks the connection closed, unregisters it and tells the consumer. Runs once. */
static void conn_finish(ag_conn_t *c)
{
    if (c->_state == AG_CONN_CLOSED)
        return;
    away_leave(c);
    if (c->_resume != NULL && c->server->store->ops->rconn_del != NULL)
        c->server->store->ops->rconn_del(c->server->store, c->id);
    c->_state = AG_CONN_CLOSED;
    ag_map_del(&c->server->conns, c->id);
    c->server->num_conns--;
    c->server->stats.connections_closed++;
    c->server->stats.disconnects[ag_disconnect_kind(c->_why)]++;
    const ag_conn_handler_t *h = c->server->conn_handler;
    if (h != NULL && h->on_close != NULL)
        h->on_close(c, c->_why, c->server->conn_handler_data);
    queue_clear(c);
    ag_debug("conn", c->id, "closed: %s", c->_why->reason);
}

/* Sustained abuse of the rate: the connection goes, with a code its client can tell apart. */
static void close_for_rate(ag_conn_t *c)
{
    c->server->stats.rate_disconnects++;
    ag_log_limited(AG_LOG_WARN, "conn", c->id, "%s: %u messages over the message rate refused; disconnecting", c->remote_ip,
                   c->_in_rate.refused);
    ag_conn_close(c, &AG_DISCONNECT_RATE);
}

void ag_conn_on_frame(ag_conn_t *c, const char *data, size_t len, int binary)
{
    if (ag_conn_is_closed(c))
        return;
    const ag_conn_handler_t *h = c->server->conn_handler;
    c->server->stats.frames_in++;
    c->server->stats.bytes_in += len;
    if (h == NULL)
        return;
    ag_conn_addref(c);
    ag_bucket_result_t r = ag_limits_message(c->server, &c->_in_rate, c->_rate_exempt);
    if (r == AG_BUCKET_OK) {
        if (h->on_frame != NULL)
            h->on_frame(c, data, len, binary, c->server->conn_handler_data);
    } else {
        /* the consumer answers it, shaped as it answers a request that fails */
        if (h->on_refused != NULL)
            h->on_refused(c, data, len, binary, AG_ERR_MESSAGE_RATE, c->server->conn_handler_data);
        if (r == AG_BUCKET_ABUSE)
            close_for_rate(c);
    }
    ag_conn_release(c);
}

int ag_conn_inbound_control(ag_conn_t *c)
{
    if (ag_conn_is_closed(c))
        return 0;
    ag_bucket_result_t r = ag_limits_message(c->server, &c->_in_rate, c->_rate_exempt);
    if (r == AG_BUCKET_ABUSE)
        close_for_rate(c);
    return r == AG_BUCKET_OK;
}

/* A resumable connection whose carrier dropped (not closed on purpose: a peer that went, a transport error, a missed
 * heartbeat) waits for its client, unless the node stops or holds general.resumeMaxAway away connections already. */
static int may_go_away(ag_conn_t *c, const ag_disconnect_t *why)
{
    ag_server_t *s = c->server;
    if (c->_resume == NULL || s->stopping || !c->accepted || s->away == NULL ||
        s->stats.conns_away >= (size_t)s->config->general.resumeMaxAway)
        return 0;
    if (c->_state == AG_CONN_OPEN)
        return why == NULL || why == &AG_DISCONNECT_PEER_CLOSED || why == &AG_DISCONNECT_TRANSPORT_ERROR ||
               why == &AG_DISCONNECT_HEARTBEAT;
    return c->_state == AG_CONN_CLOSING && c->_why == &AG_DISCONNECT_HEARTBEAT;
}

static void on_deferred_release(h2o_timeout_entry_t *entry)
{
    ag_conn_release(H2O_STRUCT_FROM_MEMBER(resume_t, expiry, entry)->conn);
}

static void on_away_expired(h2o_timeout_entry_t *entry)
{
    resume_t *r = H2O_STRUCT_FROM_MEMBER(resume_t, expiry, entry);
    ag_conn_t *c = r->conn;
    c->server->stats.away_expired++;
    ag_debug("conn", c->id, "not back within general.resumeWindow");
    ag_conn_away_end(c, NULL);
}

void ag_conn_on_transport_gone(ag_conn_t *c, const ag_disconnect_t *why)
{
    if (may_go_away(c, why)) {
        /* the transport's reference stays, as the away connection's */
        resume_t *r = c->_resume;
        r->why = c->_why != NULL ? c->_why : why != NULL ? why : &AG_DISCONNECT_TRANSPORT_ERROR;
        c->_why = NULL;
        c->_state = AG_CONN_OPEN;
        c->_transport = NULL;
        c->_transport_self = NULL;
        queue_clear(c); /* numbered frames are in the outbox, chat lines in their rooms' history */
        r->away = 1;
        r->seq_at_away = r->outbox.seq;
        r->expiry.cb = on_away_expired;
        h2o_timeout_link(c->server->loop, &c->server->away->window, &r->expiry);
        c->server->stats.conns_away++;
        ag_debug("conn", c->id, "away (%s): resumable for %d ms", r->why->reason, c->server->config->general.resumeWindow);
        return;
    }
    if (c->_why == NULL)
        c->_why = why != NULL ? why : &AG_DISCONNECT_TRANSPORT_ERROR;
    c->_transport = NULL;
    c->_transport_self = NULL;
    conn_finish(c);
    ag_conn_release(c);
}

void ag_conn_set_transport_name(ag_conn_t *c, const char *name)
{
    if (c->transport_name != NULL && strcmp(c->transport_name, name) != 0)
        c->server->stats.upgrades++;
    c->transport_name = name;
}

ag_frame_t *ag_conn_shift(ag_conn_t *c)
{
    if (c->_q_len == 0)
        return NULL;
    ag_frame_t *f = c->_queue[c->_q_head];
    c->_q_head = (c->_q_head + 1) & (c->_q_cap - 1);
    c->_q_len--;
    c->_q_bytes -= f->len;
    if (c->_q_len == 0 && c->_q_cap > 16) {
        /* An idle connection holds no queue memory. */
        free(c->_queue);
        c->_queue = NULL;
        c->_q_cap = c->_q_head = 0;
    }
    return f;
}

static int queue_reserve(ag_conn_t *c)
{
    if (c->_q_len < c->_q_cap)
        return AG_OK;
    size_t ncap = c->_q_cap == 0 ? 4 : c->_q_cap * 2;
    ag_frame_t **n = malloc(ncap * sizeof(*n));
    if (n == NULL)
        return AG_ENOMEM;
    for (size_t i = 0; i < c->_q_len; i++)
        n[i] = c->_queue[(c->_q_head + i) & (c->_q_cap - 1)];
    free(c->_queue);
    c->_queue = n;
    c->_q_cap = ncap;
    c->_q_head = 0;
    return AG_OK;
}

void ag_conn_unshift(ag_conn_t *c, ag_frame_t *f)
{
    if (ag_conn_is_closed(c) || queue_reserve(c) != AG_OK) {
        ag_frame_release(f);
        return;
    }
    c->_q_head = (c->_q_head + c->_q_cap - 1) & (c->_q_cap - 1);
    c->_queue[c->_q_head] = f;
    c->_q_len++;
    c->_q_bytes += f->len;
}

int ag_conn_bound_exceeded(ag_server_t *s, const char *id, size_t bytes, size_t frames)
{
    const ag_config_t *cfg = s->config;
    if (bytes <= (size_t)cfg->servers.websocket.server.queueMaxBytes &&
        frames <= (size_t)cfg->servers.websocket.server.queueMaxFrames)
        return 0;
    s->stats.slow_consumers++;
    ag_log_limited(AG_LOG_WARN, "conn", id, "slow consumer: %zu frames, %zu bytes waiting; disconnecting", frames, bytes);
    return 1;
}

int ag_conn_note_backlog(ag_conn_t *c, size_t bytes, size_t frames)
{
    if (ag_conn_is_closed(c))
        return AG_ECLOSED;
    if (!ag_conn_bound_exceeded(c->server, c->id, c->_q_bytes + bytes, c->_q_len + frames))
        return AG_OK;
    ag_conn_close(c, &AG_DISCONNECT_SLOW);
    return AG_EBUSY;
}

size_t ag_conn_max_frame(const ag_server_t *s)
{
    return (size_t)s->config->servers.websocket.server.queueMaxBytes / 2;
}

/* The queue itself: every check but numbering. */
static int queue_frame(ag_conn_t *c, ag_frame_t *f)
{
    if (ag_conn_is_closed(c))
        return AG_ECLOSED;
    if (f->len > ag_conn_max_frame(c->server)) {
        /* the consumer is not slow: no queue could take this frame (a producer that did not check its size) */
        ag_log(AG_LOG_WARN, "conn", c->id, "frame of %zu bytes over the limit of %zu: not sent", f->len,
               ag_conn_max_frame(c->server));
        return AG_ETOOBIG;
    }
    if (ag_conn_bound_exceeded(c->server, c->id, c->_q_bytes + f->len, c->_q_len + 1)) {
        ag_conn_close(c, &AG_DISCONNECT_SLOW);
        return AG_EBUSY;
    }
    if (queue_reserve(c) != AG_OK)
        return AG_ENOMEM;
    c->_queue[(c->_q_head + c->_q_len) & (c->_q_cap - 1)] = ag_frame_addref(f);
    c->_q_len++;
    c->_q_bytes += f->len;
    c->server->stats.frames_out++;
    c->server->stats.bytes_out += f->len;
    if (c->_q_len == 1 && c->_transport != NULL)
        c->_transport->on_pending(c, c->_transport_self);
    return AG_OK;
}

int ag_conn_send_reply(ag_conn_t *c, ag_frame_t *f, const char *message_id)
{
    if (c->_resume == NULL)
        return queue_frame(c, f);
    if (ag_conn_is_closed(c))
        return AG_ECLOSED;
    if (f->len > ag_conn_max_frame(c->server))
        return queue_frame(c, f); /* refused there, unnumbered */
    resume_t *r = c->_resume;
    uint64_t before = r->outbox.seq;
    ag_frame_t *n = ag_outbox_push(&r->outbox, f, message_id);
    if (n == NULL)
        return AG_ENOMEM;
    if (r->outbox.seq != before)
        record_frame(c, n, message_id);
    int ret = AG_OK;
    if (!r->away)
        ret = queue_frame(c, n);
    else if (r->outbox.floor > r->seq_at_away)
        ag_conn_away_end(c, &AG_DISCONNECT_SLOW); /* what its client missed is no longer kept: it cannot resume */
    ag_frame_release(n);
    return ret;
}

int ag_conn_send(ag_conn_t *c, ag_frame_t *f)
{
    return ag_conn_send_reply(c, f, NULL);
}

int ag_conn_send_unnumbered(ag_conn_t *c, ag_frame_t *f)
{
    /* holding comes first: an away connection being resumed keeps the live lines that come while its rooms' history
     * is read (they may be newer than what the store answers) */
    if (c->_resume != NULL && c->_resume->holding && !ag_conn_is_closed(c)) {
        resume_t *r = c->_resume;
        ag_frame_t **n = r->n_held < HELD_MAX ? realloc(r->held, (r->n_held + 1) * sizeof(*n)) : NULL;
        if (n == NULL) {
            if (r->away)
                ag_conn_away_end(c, &AG_DISCONNECT_SLOW);
            else
                ag_conn_close(c, &AG_DISCONNECT_SLOW);
            return AG_ENOMEM;
        }
        r->held = n;
        r->held[r->n_held++] = ag_frame_addref(f);
        return AG_OK;
    }
    if (c->_resume != NULL && c->_resume->away)
        return ag_conn_is_closed(c) ? AG_ECLOSED : AG_OK;
    return queue_frame(c, f);
}

ag_frame_t *ag_conn_reply_of(const ag_conn_t *c, const char *message_id)
{
    return c->_resume != NULL ? ag_outbox_reply_of(&c->_resume->outbox, message_id) : NULL;
}

/* --- resume --- */

static void replay_one(ag_frame_t *f, void *data);

/* c's resume state, with `given` as its token (a connection taken over) or a new one. */
static int resume_create(ag_conn_t *c, const char *given)
{
    ag_server_t *s = c->server;
    if (s->config->general.resumeWindow <= 0 || s->store->ops->history_since == NULL || c->_transport == NULL ||
        c->_transport->rebind == NULL)
        return AG_EINVAL;
    if (s->away == NULL) {
        if ((s->away = calloc(1, sizeof(*s->away))) == NULL)
            return AG_ENOMEM;
        h2o_timeout_init(s->loop, &s->away->window, (uint64_t)s->config->general.resumeWindow);
        h2o_timeout_init(s->loop, &s->away->now, 0);
        s->away->server = s;
        if (s->store->ops->rconn_touch != NULL) {
            h2o_timeout_init(s->loop, &s->away->touch, (uint64_t)s->config->general.resumeWindow / 2);
            s->away->touch_entry.cb = on_touch;
            h2o_timeout_link(s->loop, &s->away->touch, &s->away->touch_entry);
        }
    }
    resume_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return AG_ENOMEM;
    ag_outbox_init(&r->outbox, (size_t)s->config->general.resumeOutboxFrames, (size_t)s->config->general.resumeOutboxBytes);
    if (given != NULL) {
        memcpy(r->token, given, AG_RESUME_TOKEN_LEN + 1);
    } else {
        unsigned char raw[AG_RESUME_TOKEN_LEN / 2];
        ag_random_bytes(raw, sizeof(raw));
        /* with several workers the token names the worker holding the connection, so that a resume reaching another
         * worker's loop is told so (the rest, 248 random bits, is the secret) */
        if (s->workers != NULL)
            raw[0] = (unsigned char)s->worker;
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(r->token + 2 * i, 3, "%02x", raw[i]);
    }
    r->conn = c;
    c->_resume = r;
    return AG_OK;
}

int ag_conn_resumable(ag_conn_t *c, char token[AG_RESUME_TOKEN_LEN + 1])
{
    if (c->_resume == NULL) {
        int ret = resume_create(c, NULL);
        if (ret != AG_OK)
            return ret;
        record_open(c, c->_resume->token);
    }
    memcpy(token, c->_resume->token, AG_RESUME_TOKEN_LEN + 1);
    return AG_OK;
}

int ag_conn_adopt(ag_conn_t *c, const char *id, const char *token, const json_t *rec, uint64_t last_seq)
{
    ag_server_t *s = c->server;
    if (c->_resume != NULL || ag_conn_is_closed(c) || strlen(id) >= sizeof(c->id) || strlen(token) != AG_RESUME_TOKEN_LEN ||
        ag_map_get(&s->conns, id) != NULL)
        return AG_EINVAL;
    int ret = resume_create(c, token);
    if (ret != AG_OK)
        return ret;
    /* the carrier becomes the connection it resumes: same id (and fingerprint), the numbered frames it had */
    ag_map_del(&s->conns, c->id);
    snprintf(c->id, sizeof(c->id), "%s", id);
    if (ag_map_set(&s->conns, c->id, c) != AG_OK)
        return AG_ENOMEM; /* not in the table: it ends unfound, as an unknown connection would */
    const char *fp = json_string_value(json_object_get(rec, "fingerprint"));
    if (fp != NULL && fp[0] != '\0') {
        char *copy = strdup(fp);
        if (copy != NULL) {
            free(c->fingerprint);
            c->fingerprint = copy;
        }
    }
    /* who it is comes with it (the record's, not the carrier's handshake) */
    if (ag_conn_take_who(c, json_object_get(rec, "who")) != AG_OK)
        return AG_ENOMEM;
    ag_outbox_t *o = &c->_resume->outbox;
    json_t *frames = json_object_get(rec, "frames"), *e;
    size_t i;
    json_array_foreach(frames, i, e)
    {
        ag_frame_t *f = ag_frame_create(json_string_value(json_array_get(e, 2)), json_string_length(json_array_get(e, 2)), 0);
        if (f != NULL)
            ag_outbox_keep(o, (uint64_t)json_integer_value(json_array_get(e, 0)), f, json_string_value(json_array_get(e, 1)));
        if (f != NULL)
            ag_frame_release(f);
    }
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(rec, "seq")),
             floor = (uint64_t)json_integer_value(json_object_get(rec, "floor"));
    if (seq > o->seq)
        o->floor = o->seq = seq; /* its last frames were not all written: none of them may be counted on */
    if (floor > o->floor)
        o->floor = floor;
    record_open(c, token);
    /* the record is this node's now: what it keeps of the frames comes along (a hand-over's holder dropped its record) */
    for (size_t k = 0; k < o->n && s->store->ops->rconn_put != NULL; k++) {
        const ag_outbox_entry_t *e = ag_outbox_at(o, k);
        ag_store_rconn_write_t w = {.ttl_ms = record_ttl(s),
                                    .seq = e->seq,
                                    .floor = o->floor,
                                    .frame = e->frame->data,
                                    .frame_len = e->frame->len,
                                    .message_id = e->message_id};
        s->store->ops->rconn_put(s->store, c->id, &w);
    }
    c->_resume->holding = 1;
    /* the client saw frames whose record writes died with their node (a write is sent after its frame): it needs none
     * of them, and what follows is numbered after them; a claim further ahead than an outbox holds is refused */
    if (last_seq > o->seq && last_seq - o->seq <= (uint64_t)s->config->general.resumeOutboxFrames)
        o->floor = o->seq = last_seq;
    if (!ag_conn_can_replay(c, last_seq))
        return AG_ENOENT;
    s->stats.resumes++;
    ag_debug("conn", c->id, "taken over from %llu of %llu via %s", (unsigned long long)last_seq, (unsigned long long)o->seq,
             c->transport_name);
    ag_outbox_since(o, last_seq, replay_one, c);
    return AG_OK;
}

int ag_conn_token_elsewhere(const ag_server_t *s, const char *token)
{
    static const char hex[] = "0123456789abcdef";
    if (s->workers == NULL || strlen(token) != AG_RESUME_TOKEN_LEN || strspn(token, hex) != AG_RESUME_TOKEN_LEN)
        return 0;
    unsigned v = (unsigned)(strchr(hex, token[0]) - hex) * 16 + (unsigned)(strchr(hex, token[1]) - hex);
    return v != s->worker && v < AG_CONFIG_WORKERS_MAX;
}

int ag_conn_is_away(const ag_conn_t *c)
{
    return c->_resume != NULL && c->_resume->away && !ag_conn_is_closed(c);
}

ag_conn_t *ag_conn_find_resumable(ag_server_t *s, const char *id, const char *token)
{
    ag_conn_t *c = ag_map_get(&s->conns, id);
    if (c == NULL || c->_resume == NULL || ag_conn_is_closed(c) || strlen(token) != AG_RESUME_TOKEN_LEN)
        return NULL;
    unsigned char diff = 0;
    for (size_t i = 0; i < AG_RESUME_TOKEN_LEN; i++)
        diff |= (unsigned char)(c->_resume->token[i] ^ token[i]);
    return diff == 0 ? c : NULL;
}

static void replay_one(ag_frame_t *f, void *data)
{
    queue_frame(data, f);
}

int ag_conn_can_replay(const ag_conn_t *c, uint64_t last_seq)
{
    const resume_t *r = c->_resume;
    return r != NULL && last_seq <= r->outbox.seq && last_seq >= r->outbox.floor;
}

int ag_conn_resume(ag_conn_t *c, ag_conn_t *carrier, uint64_t last_seq)
{
    resume_t *r = c->_resume;
    if (r == NULL || ag_conn_is_closed(c) || !ag_conn_can_replay(c, last_seq) || carrier->_transport == NULL ||
        carrier->_transport->rebind == NULL || (c->_transport != NULL && c->_transport->rebind == NULL))
        return AG_ENOENT;
    const ag_transport_t *t = carrier->_transport, *t_old = c->_transport;
    void *self = carrier->_transport_self, *self_old = c->_transport_self;
    /* what c's queue holds is numbered in its outbox or kept in its rooms' history: replayed from what the client has */
    queue_clear(c);
    t->rebind(c, self);
    if (t_old != NULL) {
        /* its carrier is not known dead yet (a long-poll waits for its heartbeat): the two transports swap, each keeping
         * its reference, and the carrier, now on the old transport, ends with it */
        t_old->rebind(carrier, self_old);
        carrier->_transport = t_old;
        carrier->_transport_self = self_old;
        ag_conn_close(carrier, &DISCONNECT_RESUMED);
    } else {
        /* the carrier ends here; c's away reference becomes its transport's, and the carrier's goes */
        carrier->_why = &DISCONNECT_RESUMED;
        carrier->_transport = NULL;
        carrier->_transport_self = NULL;
        conn_finish(carrier);
        ag_conn_release(carrier);
        away_leave(c);
    }
    c->_transport = t;
    c->_transport_self = self;
    c->transport_name = carrier->transport_name;
    memcpy(c->remote_ip, carrier->remote_ip, sizeof(c->remote_ip));
    c->remote_port = carrier->remote_port;
    c->server->stats.resumes++;
    ag_debug("conn", c->id, "resumed from %llu of %llu via %s", (unsigned long long)last_seq, (unsigned long long)r->outbox.seq,
             c->transport_name);
    ag_outbox_since(&r->outbox, last_seq, replay_one, c);
    return AG_OK;
}

void ag_conn_away_end(ag_conn_t *c, const ag_disconnect_t *why)
{
    if (!ag_conn_is_away(c))
        return;
    c->_why = why != NULL ? why : c->_resume->why;
    conn_finish(c);
    ag_conn_release(c); /* the away reference */
}

void ag_conn_hand_over_end(ag_conn_t *c)
{
    static const ag_disconnect_t handed = {1000, "handed over", 1};
    if (!ag_conn_is_away(c))
        return;
    c->handed_over = 1;
    ag_conn_away_end(c, &handed);
}

void ag_conn_away_end_all(ag_server_t *s)
{
    if (s->away == NULL)
        return;
    const char *k;
    void *v;
    /* conn_finish removes entries: collect first */
    size_t n = 0, cap = s->stats.conns_away;
    ag_conn_t **list = cap != 0 ? malloc(cap * sizeof(*list)) : NULL;
    for (size_t it = 0; list != NULL && ag_map_next(&s->conns, &it, &k, &v);)
        if (ag_conn_is_away(v) && n < cap)
            list[n++] = ag_conn_addref(v);
    for (size_t i = 0; i < n; i++) {
        ag_conn_away_end(list[i], NULL);
        ag_conn_release(list[i]);
    }
    free(list);
}

void ag_conn_away_dispose(ag_server_t *s)
{
    ag_conn_away_end_all(s);
    if (s->away == NULL)
        return;
    /* the releases still due */
    while (!h2o_linklist_is_empty(&s->away->now._entries)) {
        h2o_timeout_entry_t *e = H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, s->away->now._entries.next);
        h2o_timeout_unlink(e);
        e->cb(e);
    }
    if (h2o_timeout_is_linked(&s->away->touch_entry))
        h2o_timeout_unlink(&s->away->touch_entry);
    if (h2o_linklist_is_empty(&s->away->window._entries) && h2o_linklist_is_empty(&s->away->now._entries)) {
        if (s->store->ops->rconn_touch != NULL)
            ag_server_timeout_dispose(s, &s->away->touch);
        ag_server_timeout_dispose(s, &s->away->window);
        ag_server_timeout_dispose(s, &s->away->now);
        free(s->away);
        s->away = NULL;
    }
}

/* --- graceful restart --- */

int ag_conn_resume_info(const ag_conn_t *c, const char **token, const ag_outbox_t **outbox, uint64_t *left_ms)
{
    const resume_t *r = c->_resume;
    if (r == NULL)
        return AG_ENOENT;
    uint64_t window = (uint64_t)c->server->config->general.resumeWindow, now = h2o_now(c->server->loop);
    *token = r->token;
    *outbox = &r->outbox;
    *left_ms = window;
    if (r->away && h2o_timeout_is_linked((h2o_timeout_entry_t *)&r->expiry))
        *left_ms = r->expiry.registered_at + window > now ? r->expiry.registered_at + window - now : 0;
    return AG_OK;
}

static const char *static_transport_name(const char *name)
{
    static const char *const names[] = {"websocket", "polling", "sse"};
    for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return names[i];
    return names[0];
}

ag_conn_t *ag_conn_restore(ag_server_t *s, const ag_conn_saved_t *saved, ag_outbox_t *outbox)
{
    uint64_t window = (uint64_t)s->config->general.resumeWindow;
    if (window == 0 || strlen(saved->id) >= sizeof(((ag_conn_t *)NULL)->id) || strlen(saved->token) != AG_RESUME_TOKEN_LEN ||
        ag_map_get(&s->conns, saved->id) != NULL)
        return NULL;
    if (s->away == NULL) {
        if ((s->away = calloc(1, sizeof(*s->away))) == NULL)
            return NULL;
        h2o_timeout_init(s->loop, &s->away->window, window);
        h2o_timeout_init(s->loop, &s->away->now, 0);
    }
    ag_conn_t *c = calloc(1, sizeof(*c));
    resume_t *r = calloc(1, sizeof(*r));
    if (c == NULL || r == NULL || (c->fingerprint = strdup(saved->fingerprint)) == NULL ||
        (saved->user != NULL && (c->user = strdup(saved->user)) == NULL)) {
        if (c != NULL)
            conn_free_fields(c);
        free(c);
        free(r);
        return NULL;
    }
    memcpy(c->id, saved->id, strlen(saved->id) + 1);
    snprintf(c->remote_ip, sizeof(c->remote_ip), "%s", saved->remote_ip != NULL ? saved->remote_ip : "");
    c->connected_at = saved->connected_at;
    c->transport_name = static_transport_name(saved->transport_name);
    c->server = s;
    c->_rate_exempt = ag_limits_exempt(s, c->remote_ip);
    c->accepted = 1;
    c->claims = json_is_object(saved->claims) ? json_incref(saved->claims) : NULL;
    c->hook_data = json_is_object(saved->hook_data) ? json_incref(saved->hook_data) : NULL;
    c->_data_empty = c->hook_data == NULL;
    c->_refcnt = 1; /* the away reference */
    r->outbox = *outbox;
    memset(outbox, 0, sizeof(*outbox));
    memcpy(r->token, saved->token, AG_RESUME_TOKEN_LEN + 1);
    r->conn = c;
    r->away = 1;
    r->seq_at_away = r->outbox.seq;
    r->why = &AG_DISCONNECT_SHUTDOWN;
    c->_resume = r;
    if (ag_map_set(&s->conns, c->id, c) != AG_OK) {
        conn_free_fields(c);
        free(c);
        return NULL;
    }
    s->num_conns++;
    s->stats.conns_away++;
    r->expiry.cb = on_away_expired;
    h2o_timeout_link(s->loop, &s->away->window, &r->expiry);
    /* the window it has left, not a new one: it went away before the restart (h2o keeps a list in link order, which
     * the caller's shortest-first order preserves) */
    uint64_t left = saved->left_ms < window ? saved->left_ms : window;
    r->expiry.registered_at -= window - left;
    ag_debug("conn", c->id, "restored: resumable for %llu ms", (unsigned long long)left);
    return c;
}

int ag_conn_send_json(ag_conn_t *c, const json_t *obj)
{
    ag_frame_t *f = ag_frame_from_json(obj);
    if (f == NULL)
        return AG_ENOMEM;
    int ret = ag_conn_send(c, f);
    ag_frame_release(f);
    return ret;
}

void ag_conn_close(ag_conn_t *c, const ag_disconnect_t *why)
{
    if (c->_state != AG_CONN_OPEN)
        return;
    c->_state = AG_CONN_CLOSING;
    c->_why = why;
    ag_debug("conn", c->id, "closing: %s", why->reason);
    if (c->_transport != NULL) {
        /* Keep what is queued: the transport flushes it before its close frame where it can. */
        c->_transport->close(c, c->_transport_self, why);
    } else if (c->_resume != NULL && c->_resume->away) {
        /* away (a kick, an expired token): it ends now, and its away reference goes on the loop's next pass, as the
         * caller may hold none of its own */
        resume_t *r = c->_resume;
        conn_finish(c);
        r->expiry.cb = on_deferred_release;
        h2o_timeout_link(c->server->loop, &c->server->away->now, &r->expiry);
    }
}

void ag_conn_hold_begin(ag_conn_t *c)
{
    if (c->_resume != NULL)
        c->_resume->holding = 1;
}

void ag_conn_hold_end(ag_conn_t *c, ag_frame_t **first, size_t n, ag_frame_t *then)
{
    resume_t *r = c->_resume;
    if (r == NULL || !r->holding)
        return;
    r->holding = 0;
    ag_frame_t **held = r->held;
    size_t n_held = r->n_held;
    r->held = NULL;
    r->n_held = 0;
    for (size_t i = 0; i < n; i++)
        ag_conn_send_unnumbered(c, first[i]);
    if (then != NULL)
        ag_conn_send_unnumbered(c, then);
    for (size_t i = 0; i < n_held; i++) {
        ag_conn_send_unnumbered(c, held[i]);
        ag_frame_release(held[i]);
    }
    free(held);
}
