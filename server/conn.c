/*
 * The connection (conn.h): its lifetime, the outbound queue and the slow-consumer rule, the message rate, a carrier that
 * drops. Resume (a resumable connection's state, its store record, the away connections, a takeover, the graceful
 * restart's side) is conn_resume.c; what the two share is conn_internal.h.
 */
#include "conn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "limit.h"

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

/* What a connection being taken over may hold at most: past it, it cannot be resumed whole. */
#define HELD_MAX 4096

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

void ag__conn_free_fields(ag_conn_t *c)
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
        ag__conn_free_fields(c);
        free(c);
        return NULL;
    }
    c->_refcnt = 1;
    c->_transport = transport;
    c->_transport_self = self;
    if (ag_map_set(&server->conns, c->id, c) != AG_OK) {
        ag__conn_free_fields(c);
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

void ag__conn_queue_clear(ag_conn_t *c)
{
    ag_frame_t *f;
    while ((f = ag_conn_shift(c)) != NULL)
        ag_frame_release(f);
}

void ag_conn_release(ag_conn_t *c)
{
    if (--c->_refcnt != 0)
        return;
    ag__conn_queue_clear(c);
    free(c->_queue); /* no rooms left: the consumer left them when the connection finished (on_close) */
    ag__conn_free_fields(c);
    free(c);
}

/* Marks the connection closed, unregisters it and tells the consumer. Runs once. */
void ag__conn_finish(ag_conn_t *c)
{
    if (c->_state == AG_CONN_CLOSED)
        return;
    ag__conn_away_leave(c);
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
    ag__conn_queue_clear(c);
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
    ag_conn_release(H2O_STRUCT_FROM_MEMBER(ag__conn_resume_t, expiry, entry)->conn);
}

void ag_conn_on_transport_gone(ag_conn_t *c, const ag_disconnect_t *why)
{
    if (may_go_away(c, why)) {
        /* the transport's reference stays, as the away connection's */
        ag__conn_resume_t *r = c->_resume;
        r->why = c->_why != NULL ? c->_why : why != NULL ? why : &AG_DISCONNECT_TRANSPORT_ERROR;
        c->_why = NULL;
        c->_state = AG_CONN_OPEN;
        c->_transport = NULL;
        c->_transport_self = NULL;
        ag__conn_queue_clear(c); /* numbered frames are in the outbox, chat lines in their rooms' history */
        r->away = 1;
        r->seq_at_away = r->outbox.seq;
        r->expiry.cb = ag__conn_on_away_expired;
        h2o_timeout_link(c->server->loop, &c->server->away->window, &r->expiry);
        c->server->stats.conns_away++;
        ag_debug("conn", c->id, "away (%s): resumable for %d ms", r->why->reason, c->server->config->general.resumeWindow);
        return;
    }
    if (c->_why == NULL)
        c->_why = why != NULL ? why : &AG_DISCONNECT_TRANSPORT_ERROR;
    c->_transport = NULL;
    c->_transport_self = NULL;
    ag__conn_finish(c);
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
int ag__conn_queue_frame(ag_conn_t *c, ag_frame_t *f)
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
        return ag__conn_queue_frame(c, f);
    if (ag_conn_is_closed(c))
        return AG_ECLOSED;
    if (f->len > ag_conn_max_frame(c->server))
        return ag__conn_queue_frame(c, f); /* refused there, unnumbered */
    ag__conn_resume_t *r = c->_resume;
    uint64_t before = r->outbox.seq;
    ag_frame_t *n = ag_outbox_push(&r->outbox, f, message_id);
    if (n == NULL)
        return AG_ENOMEM;
    if (r->outbox.seq != before)
        ag__conn_record_frame(c, n, message_id);
    int ret = AG_OK;
    if (!r->away)
        ret = ag__conn_queue_frame(c, n);
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
        ag__conn_resume_t *r = c->_resume;
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
    return ag__conn_queue_frame(c, f);
}

ag_frame_t *ag_conn_reply_of(const ag_conn_t *c, const char *message_id)
{
    return c->_resume != NULL ? ag_outbox_reply_of(&c->_resume->outbox, message_id) : NULL;
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
        ag__conn_resume_t *r = c->_resume;
        ag__conn_finish(c);
        r->expiry.cb = on_deferred_release;
        h2o_timeout_link(c->server->loop, &c->server->away->now, &r->expiry);
    }
}
