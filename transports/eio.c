/*
 * The engine.io session: the sid table, its outbox and flushing, heartbeat, the upgrade dance, a session's lifetime and
 * the ag_transport_t the logical connection sees. Requests reach sessions through eio_router.c (the handshake, the
 * preflight, the routing); the transports themselves live in eio_polling.c, eio_ws.c and eio_sse.c.
 */
#include "eio.h"
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "limit.h"

ag__eio_node_t *ag__eio_node(ag_server_t *server)
{
    return server->eio;
}

/* --- outbox and flushing --- */

static void outbox_clear(ag__eio_session_t *s)
{
    for (size_t i = 0; i < s->outbox_len; i++)
        if (s->outbox[i].frame != NULL)
            ag_frame_release(s->outbox[i].frame);
    s->outbox_len = 0;
    s->outbox_bytes = 0;
}

int ag__eio_note_backlog(ag__eio_session_t *s, size_t bytes, size_t frames)
{
    bytes += s->outbox_bytes;
    frames += s->outbox_len;
    int r = s->upper != NULL ? s->upper->note_backlog(s->upper_self, bytes, frames) : AG__EIO_UPPER_DEFAULT;
    if (r != AG__EIO_UPPER_DEFAULT)
        return r == AG_EBUSY;
    /* no consumer above counts it (echo, a socket.io session not connected to "/"): the same rule, and the session is
     * the consumer */
    if (!ag_conn_bound_exceeded(s->server, s->sid, bytes, frames))
        return 0;
    ag__eio_session_close(s, &AG_DISCONNECT_SLOW, 0);
    return 1;
}

static int outbox_push(ag__eio_session_t *s, uint8_t type, const char *text, ag_frame_t *frame)
{
    if (ag__eio_note_backlog(s, frame != NULL ? frame->len : 0, 1))
        return AG_EBUSY;
    if (s->outbox_len == s->outbox_cap) {
        size_t ncap = s->outbox_cap == 0 ? 4 : s->outbox_cap * 2;
        ag__eio_out_t *n = realloc(s->outbox, ncap * sizeof(*n));
        if (n == NULL)
            return AG_ENOMEM;
        s->outbox = n;
        s->outbox_cap = ncap;
    }
    s->outbox[s->outbox_len++] = (ag__eio_out_t){type, frame != NULL ? ag_frame_addref(frame) : NULL, text};
    if (frame != NULL)
        s->outbox_bytes += frame->len;
    return AG_OK;
}

static void flush_now(ag__eio_session_t *s)
{
    ag__eio_transport_t *t = s->transport;
    if (t == NULL || !t->ops->writable(t))
        return;
    const ag__eio_upper_t *u = s->upper;
    size_t n = s->outbox_len + (u != NULL ? u->queued(s->upper_self) : 0);
    if (n == 0)
        return;
    ag__eio_out_t *pkts = malloc(n * sizeof(*pkts));
    if (pkts == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < s->outbox_len; i++)
        pkts[k++] = s->outbox[i];
    s->outbox_len = 0;
    s->outbox_bytes = 0;
    ag_frame_t *f;
    while (k < n && (f = u->shift(s->upper_self)) != NULL)
        pkts[k++] = (ag__eio_out_t){AG_EIO_MESSAGE, f, NULL};
    if (k == 0) {
        /* the upper had nothing for the client after all (a reply the socket.io layer keeps to itself) */
        free(pkts);
        return;
    }
    ag__eio_session_addref(s);
    t->ops->send(t, pkts, k);
    for (size_t i = 0; i < k; i++)
        if (pkts[i].frame != NULL)
            ag_frame_release(pkts[i].frame);
    free(pkts);
    ag__eio_session_release(s);
}

/* engine.io 6.6 closes a WebSocket without a close packet (its transport's close is the socket's), while a polling or
 * SSE close answers the held response with one. Used where engine.io closes by itself: a ping timeout, and the
 * socket.io layer's closes (socket.io 4.8 closes the engine.io socket on a parse or binary error). */
static int close_packet_fits(const ag__eio_session_t *s)
{
    return s->transport != NULL && s->transport->ops->kind != AG__EIO_WEBSOCKET;
}

void ag__eio_session_close_self(ag__eio_session_t *s, const ag_disconnect_t *why)
{
    ag__eio_session_close(s, why, close_packet_fits(s));
}

static void flush(ag__eio_session_t *s)
{
    flush_now(s);
    /* An upper that asked to close (socket.io) has it done once its last packets (a DISCONNECT) are out. */
    const ag__eio_upper_t *u = s->upper;
    if (u != NULL && u->closing != NULL && !s->closed && u->closing(s->upper_self) && s->outbox_len == 0 &&
        u->queued(s->upper_self) == 0)
        ag__eio_session_close(s, &AG_DISCONNECT_SERVER, close_packet_fits(s));
}

void ag__eio_on_writable(ag__eio_session_t *s)
{
    flush(s);
}

void ag__eio_send_message(ag__eio_session_t *s, ag_frame_t *f)
{
    if (outbox_push(s, AG_EIO_MESSAGE, NULL, f) == AG_OK)
        flush(s);
}

/* --- lifetime --- */

void ag__eio_scratch_get(ag__eio_node_t *n, ag_eio_buf_t *own, ag_eio_buf_t **payload, ag_eio_buf_t **event, int *shared)
{
    *shared = !n->scratch_busy;
    *payload = *shared ? &n->scratch_payload : &own[0];
    *event = *shared ? &n->scratch_event : &own[1];
    n->scratch_busy = 1;
}

/* One grown by a large message is let go rather than kept. */
static void scratch_clear(ag_eio_buf_t *b, int shared)
{
    b->len = 0;
    if (!shared || b->cap > 64 * 1024)
        ag_eio_buf_dispose(b);
}

void ag__eio_scratch_put(ag__eio_node_t *n, ag_eio_buf_t *payload, ag_eio_buf_t *event, int shared)
{
    scratch_clear(payload, shared);
    scratch_clear(event, shared);
    if (shared)
        n->scratch_busy = 0;
}

void ag__eio_session_addref(ag__eio_session_t *s)
{
    ++s->refcnt;
}

static void unlink_timers(ag__eio_session_t *s)
{
    h2o_timeout_entry_t *entries[] = {&s->ping_timer, &s->pong_deadline, &s->upgrade_deadline, &s->noop_tick};
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (h2o_timeout_is_linked(entries[i]))
            h2o_timeout_unlink(entries[i]);
}

void ag__eio_session_release(ag__eio_session_t *s)
{
    if (--s->refcnt != 0)
        return;
    unlink_timers(s);
    if (h2o_timeout_is_linked(&s->finish))
        h2o_timeout_unlink(&s->finish);
    outbox_clear(s);
    free(s->outbox);
    if (s->polling != NULL)
        ag__eio_polling_destroy(s->polling);
    if (s->sse != NULL)
        ag__eio_sse_destroy(s->sse);
    free(s);
}

static void on_finish(h2o_timeout_entry_t *entry)
{
    ag__eio_session_t *s = H2O_STRUCT_FROM_MEMBER(ag__eio_session_t, finish, entry);
    const ag__eio_upper_t *u = s->upper;
    if (u != NULL) {
        s->upper = NULL;
        u->on_gone(s->upper_self, s->why);
    }
    ag__eio_session_release(s); /* the table's reference */
}

static void close_probe(ag__eio_session_t *s)
{
    if (h2o_timeout_is_linked(&s->upgrade_deadline))
        h2o_timeout_unlink(&s->upgrade_deadline);
    if (h2o_timeout_is_linked(&s->noop_tick))
        h2o_timeout_unlink(&s->noop_tick);
    ag__eio_transport_t *p = s->probe;
    if (p != NULL) {
        s->probe = NULL;
        p->ops->close(p);
    }
}

void ag__eio_session_close(ag__eio_session_t *s, const ag_disconnect_t *why, int send_close)
{
    if (s->closed)
        return;
    ag_debug("eio", s->sid, "closing: %s", why->reason);
    s->closed = 1;
    s->why = why;
    ag__eio_session_addref(s);
    unlink_timers(s);
    if (send_close && s->transport != NULL && outbox_push(s, AG_EIO_CLOSE, NULL, NULL) == AG_OK)
        flush(s);
    close_probe(s);
    ag__eio_transport_t *t = s->transport;
    s->transport = NULL;
    if (t != NULL)
        t->ops->close(t);
    outbox_clear(s);
    ag__eio_node_t *n = ag__eio_node(s->server);
    if (ag_map_get(&n->sessions, s->sid) == s)
        ag_map_del(&n->sessions, s->sid);
    /* The connection hears of it from the loop, never from inside its own close() or a send it is dispatching. */
    h2o_timeout_link(s->server->loop, &s->server->ctx.zero_timeout, &s->finish);
    ag__eio_session_release(s);
}

void ag__eio_transport_gone(ag__eio_session_t *s, ag__eio_transport_t *t, const ag_disconnect_t *why)
{
    if (t == s->probe) {
        s->probe = NULL;
        s->server->stats.upgrade_fallbacks++; /* the probe's carrier broke: the session stays where it is */
        close_probe(s);
    } else if (t == s->transport) {
        s->transport = NULL;
        ag__eio_session_close(s, why, 0);
    }
}

/* --- heartbeat and upgrade --- */

static void on_ping_timer(h2o_timeout_entry_t *entry)
{
    ag__eio_session_t *s = H2O_STRUCT_FROM_MEMBER(ag__eio_session_t, ping_timer, entry);
    ag__eio_node_t *n = ag__eio_node(s->server);
    /* the deadline runs even when the ping cannot be delivered now (no GET held) */
    h2o_timeout_link(s->server->loop, &n->ping_timeout, &s->pong_deadline);
    /* protocol 3: the client pings; the server only waits pingInterval + pingTimeout for it */
    if (s->protocol != 3 && outbox_push(s, AG_EIO_PING, NULL, NULL) == AG_OK)
        flush(s);
}

static void on_pong_deadline(h2o_timeout_entry_t *entry)
{
    ag__eio_session_t *s = H2O_STRUCT_FROM_MEMBER(ag__eio_session_t, pong_deadline, entry);
    ag_debug("eio", s->sid, "ping timeout");
    ag__eio_session_close(s, &AG_DISCONNECT_HEARTBEAT, close_packet_fits(s));
}

/* h2o's loop runs a turn's I/O before its timers, and a loop that lags fires them late: a request that lands once its
 * session's pong deadline has run out would otherwise still be served. The request checks the deadline itself,
 * counted from when the ping was due, as a client counts it. */
int ag__eio_heartbeat_expired(ag__eio_session_t *s)
{
    ag__eio_node_t *n = ag__eio_node(s->server);
    uint64_t now = h2o_now(s->server->loop);
    if (h2o_timeout_is_linked(&s->pong_deadline))
        return now >= s->ping_due + n->ping_timeout.timeout;
    if (h2o_timeout_is_linked(&s->ping_timer))
        return now >= s->ping_timer.registered_at + n->ping_interval.timeout + n->ping_timeout.timeout;
    return 0;
}

static void schedule_ping(ag__eio_session_t *s)
{
    if (h2o_timeout_is_linked(&s->ping_timer))
        h2o_timeout_unlink(&s->ping_timer);
    h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->ping_interval, &s->ping_timer);
    s->ping_due = s->ping_timer.registered_at + ag__eio_node(s->server)->ping_interval.timeout;
}

static void on_upgrade_deadline(h2o_timeout_entry_t *entry)
{
    ag__eio_session_t *s = H2O_STRUCT_FROM_MEMBER(ag__eio_session_t, upgrade_deadline, entry);
    ag_debug("eio", s->sid, "upgrade timeout: closing the probe");
    s->server->stats.upgrade_fallbacks++;
    close_probe(s);
}

/* While a probe is pending, every held GET is released with a noop so the client can pause polling. */
static void on_noop_tick(h2o_timeout_entry_t *entry)
{
    ag__eio_session_t *s = H2O_STRUCT_FROM_MEMBER(ag__eio_session_t, noop_tick, entry);
    ag__eio_transport_t *t = s->transport;
    if (t != NULL && t->ops->kind == AG__EIO_POLLING && t->ops->writable(t)) {
        ag__eio_out_t noop = {AG_EIO_NOOP, NULL, NULL};
        t->ops->send(t, &noop, 1);
    }
    if (s->probe != NULL && !h2o_timeout_is_linked(&s->noop_tick))
        h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->hundred_ms, &s->noop_tick);
}

static void do_upgrade(ag__eio_session_t *s)
{
    ag__eio_transport_t *old = s->transport, *t = s->probe;
    if (h2o_timeout_is_linked(&s->upgrade_deadline))
        h2o_timeout_unlink(&s->upgrade_deadline);
    if (h2o_timeout_is_linked(&s->noop_tick))
        h2o_timeout_unlink(&s->noop_tick);
    s->probe = NULL;
    s->transport = t;
    s->upgraded = 1;
    if (old != NULL)
        old->ops->close(old);
    if (s->upper != NULL && s->upper->set_transport_name != NULL)
        s->upper->set_transport_name(s->upper_self, t->ops->name);
    ag_debug("eio", s->sid, "upgraded to %s", t->ops->name);
    flush(s);
}

/* Every packet a client sends counts against the message rate: where the upper counts it (a connection's bucket;
 * a message for the session layer is counted in ag_conn_on_frame, whose refusal is an error reply), else in the
 * session's own bucket (socket.io control packets, echo). 1: handle the packet. */
static int inbound_allowed(ag__eio_session_t *s, const ag_eio_packet_t *pkt)
{
    if (s->closed)
        return 0;
    int r = s->upper != NULL ? s->upper->inbound(s->upper_self, pkt) : AG__EIO_UPPER_DEFAULT;
    if (r != AG__EIO_UPPER_DEFAULT)
        return r;
    ag_bucket_result_t r2 = ag_limits_message(s->server, &s->in_rate, s->rate_exempt);
    if (r2 == AG_BUCKET_ABUSE) {
        s->server->stats.rate_disconnects++;
        ag_log_limited(AG_LOG_WARN, "eio", s->sid, "%u packets over the message rate refused; closing", s->in_rate.refused);
        ag__eio_session_close(s, &AG_DISCONNECT_RATE, 1);
    }
    return r2 == AG_BUCKET_OK;
}

int ag__eio_inbound_control(ag__eio_session_t *s)
{
    return inbound_allowed(s, NULL);
}

void ag__eio_on_packet(ag__eio_session_t *s, ag__eio_transport_t *t, const ag_eio_packet_t *pkt)
{
    if (!inbound_allowed(s, pkt))
        return;
    if (t == s->probe) {
        if (pkt->type == AG_EIO_PING && pkt->len == 5 && memcmp(pkt->data, "probe", 5) == 0) {
            ag__eio_out_t pong = {AG_EIO_PONG, NULL, "probe"};
            t->ops->send(t, &pong, 1);
            /* the first noop goes out on the first tick, as engine.io does: a "5" read in the same batch as the
             * "2probe" completes the upgrade first, and a GET that raced it is refused, not released */
            if (!h2o_timeout_is_linked(&s->noop_tick))
                h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->hundred_ms, &s->noop_tick);
        } else if (pkt->type == AG_EIO_UPGRADE) {
            do_upgrade(s);
        } else {
            close_probe(s);
        }
        return;
    }
    if (t != s->transport)
        return;
    switch (pkt->type) {
    case AG_EIO_CLOSE:
        /* not "on purpose" for resume: engine.io-client sends it when it gives up on a transport after an error too */
        ag__eio_session_close(s, &AG_DISCONNECT_PEER_CLOSED, 0);
        break;
    case AG_EIO_PING:
        if (s->protocol == 3) {
            /* protocol 3's heartbeat: the pong carries the ping's data back, and the wait starts again */
            if (h2o_timeout_is_linked(&s->pong_deadline))
                h2o_timeout_unlink(&s->pong_deadline);
            schedule_ping(s);
            ag_frame_t *f = pkt->len != 0 ? ag_frame_create(pkt->data, pkt->len, 0) : NULL;
            if ((pkt->len == 0 || f != NULL) && outbox_push(s, AG_EIO_PONG, NULL, f) == AG_OK)
                flush(s);
            ag_frame_release(f);
            break;
        }
        ag_debug("eio", s->sid, "invalid heartbeat direction");
        ag__eio_session_close(s, &AG_DISCONNECT_PROTOCOL_ERROR, 0);
        break;
    case AG_EIO_PONG:
        if (h2o_timeout_is_linked(&s->pong_deadline))
            h2o_timeout_unlink(&s->pong_deadline);
        schedule_ping(s);
        break;
    case AG_EIO_MESSAGE:
        if (s->upper != NULL)
            s->upper->on_message(s->upper_self, pkt->data, pkt->len, pkt->binary);
        break;
    default:
        break; /* open, upgrade and noop from a client mean nothing on the current transport */
    }
}

int ag__eio_on_payload(ag__eio_session_t *s, ag__eio_transport_t *t, const char *body, size_t len, int octets)
{
    char *scratch = malloc(len + 4);
    if (scratch == NULL)
        return -1;
    size_t pos = 0, plen;
    const char *piece;
    int ret = 0;
    ag__eio_session_addref(s);
    while (!s->closed) {
        int more, bin = 0, bad;
        ag_eio_packet_t pkt;
        if (octets) {
            more = ag_eio3_binary_payload_next(body, len, &pos, &piece, &plen, &bin);
            bad = more < 0 || (more > 0 && ag_eio3_binary_packet_decode(piece, plen, bin, scratch, &pkt) != AG_OK);
        } else if (s->protocol == 3) {
            more = ag_eio3_payload_next(body, len, &pos, &piece, &plen);
            bad = more < 0 || (more > 0 && ag_eio3_packet_decode(piece, plen, scratch, &pkt) != AG_OK);
        } else {
            more = ag_eio_payload_next(body, len, &pos, &piece, &plen);
            bad = more < 0 || (more > 0 && ag_eio_packet_decode(piece, plen, scratch, &pkt) != AG_OK);
        }
        if (more == 0)
            break;
        if (bad) {
            ag__eio_session_close(s, &AG_DISCONNECT_PROTOCOL_ERROR, 0);
            ret = -1;
            break;
        }
        ag__eio_on_packet(s, t, &pkt);
    }
    ag__eio_session_release(s);
    free(scratch);
    return ret;
}

int ag__eio_payload_append(const ag__eio_session_t *s, ag_eio_buf_t *b, int type, const char *data, size_t len, int binary,
                           int octets)
{
    if (octets)
        return ag_eio3_binary_payload_append(b, type, data, len, binary);
    return s->protocol == 3 ? ag_eio3_payload_append(b, type, data, len, binary)
                            : ag_eio_payload_append(b, type, data, len, binary);
}

/* --- sessions --- */

size_t ag__eio_open_json(ag__eio_session_t *s, ag__eio_kind_t kind, int sse_offered, char *out, size_t cap)
{
    const ag_config_t *cfg = s->server->config;
    char *const *tr = cfg->servers.websocket.server.transports;
    const char *upgrades = "[]";
    if (kind == AG__EIO_POLLING) {
        int ws = ag_config_list_has(tr, "websocket"), sse = sse_offered && ag_config_list_has(tr, "sse");
        upgrades = ws && sse ? "[\"websocket\",\"sse\"]" : ws ? "[\"websocket\"]" : sse ? "[\"sse\"]" : "[]";
    }
    int n;
    if (s->protocol == 3) /* protocol 3's open packet has no maxPayload, and SSE is not offered there */
        n = snprintf(out, cap, "{\"sid\":\"%s\",\"upgrades\":%s,\"pingInterval\":%d,\"pingTimeout\":%d}", s->sid,
                     kind == AG__EIO_POLLING && ag_config_list_has(tr, "websocket") ? "[\"websocket\"]" : "[]",
                     cfg->servers.websocket.server.pingInterval, cfg->servers.websocket.server.pingTimeout);
    else
        n = snprintf(out, cap, "{\"sid\":\"%s\",\"upgrades\":%s,\"pingInterval\":%d,\"pingTimeout\":%d,\"maxPayload\":%ld}", s->sid,
                     upgrades, cfg->servers.websocket.server.pingInterval, cfg->servers.websocket.server.pingTimeout,
                     cfg->servers.websocket.server.maxHttpBufferSize);
    return n < 0 ? 0 : (size_t)n;
}

ag__eio_session_t *ag__eio_session_new(ag_server_t *server, int rate_exempt)
{
    ag__eio_node_t *n = ag__eio_node(server);
    ag__eio_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    do {
        ag_eio_sid_generate(s->sid);
        /* the sid names its node, so any node can forward a request for it (server/cluster.h) */
        ag_cluster_sid_stamp(server, s->sid);
    } while (ag_map_get(&n->sessions, s->sid) != NULL);
    s->server = server;
    s->protocol = 4;
    s->refcnt = 1; /* the table's */
    s->ping_timer.cb = on_ping_timer;
    s->pong_deadline.cb = on_pong_deadline;
    s->upgrade_deadline.cb = on_upgrade_deadline;
    s->noop_tick.cb = on_noop_tick;
    s->finish.cb = on_finish;
    s->rate_exempt = rate_exempt;
    if (ag_map_set(&n->sessions, s->sid, s) != AG_OK) {
        free(s);
        return NULL;
    }
    return s;
}

void ag__eio_probe_start(ag__eio_session_t *s, ag__eio_transport_t *t)
{
    s->probe = t;
    h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->upgrade_timeout, &s->upgrade_deadline);
}

void ag__eio_session_start(ag__eio_session_t *s, ag__eio_transport_t *t)
{
    s->transport = t;
    schedule_ping(s);
}

int ag_eio_register(ag_server_t *s)
{
    ag__eio_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return AG_ENOMEM;
    const ag_config_t *cfg = s->config;
    n->server = s;
    ag_map_init(&n->sessions);
    h2o_linklist_init_anchor(&n->sse_rings);
    ag__eio_batch_node_init(n);
    h2o_linklist_init_anchor(&n->directs);
    ag_ptrmap_init(&n->watched);
    h2o_timeout_init(s->loop, &n->ping_interval, (uint64_t)cfg->servers.websocket.server.pingInterval);
    h2o_timeout_init(s->loop, &n->ping_timeout, (uint64_t)cfg->servers.websocket.server.pingTimeout);
    h2o_timeout_init(s->loop, &n->upgrade_timeout, (uint64_t)cfg->servers.websocket.server.upgradeTimeout);
    h2o_timeout_init(s->loop, &n->keepalive, (uint64_t)cfg->servers.websocket.server.sse.keepaliveMs);
    h2o_timeout_init(s->loop, &n->hundred_ms, 100);
    h2o_timeout_init(s->loop, &n->poll_sleep, (uint64_t)cfg->servers.websocket.server.pollSleepMs);
    s->eio = n;
    int ret = ag_eio_serve(s, cfg->servers.websocket.server.pathname, AG_EIO_PATH_SHARED, ag__eio_attach_conn, 1);
    if (ret == 0 && cfg->servers.engineio.path[0] != '\0')
        ret = ag_eio_serve(s, cfg->servers.engineio.path, AG_EIO_PATH_OWN, ag__eio_attach_conn, 1);
    return ret;
}

void ag_eio_stop(ag_server_t *s)
{
    ag__eio_node_t *n = ag__eio_node(s);
    if (n == NULL)
        return;
    const char *sid;
    void *v;
    /* uppers with a connection hear of it through ag_conn_close(); the others (echo) through on_stop */
    for (size_t it = 0; ag_map_next(&n->sessions, &it, &sid, &v);) {
        ag__eio_session_t *sess = v;
        if (sess->upper != NULL && sess->upper->on_stop != NULL)
            sess->upper->on_stop(sess->upper_self, sess);
    }
}

void ag_eio_dispose(ag_server_t *s)
{
    ag__eio_node_t *n = ag__eio_node(s);
    if (n == NULL)
        return;
    s->eio = NULL;
    ag__eio_batch_node_dispose(n);
    ag__eio_direct_node_dispose(n);
    /* Sessions still open here (the shutdown deadline passed) are held by requests and sockets h2o never finished: the
     * node stays with the loop rather than being freed under them (see ag_server_timeout_dispose). */
    if (n->sessions.size != 0 || n->watched.size != 0 || s->stats.polls_asleep != 0)
        return;
    if (h2o_timeout_is_linked(&n->trim))
        h2o_timeout_unlink(&n->trim);
    h2o_timeout_t *lists[] = {&n->ping_interval, &n->ping_timeout, &n->upgrade_timeout,
                              &n->keepalive,     &n->hundred_ms,   &n->poll_sleep};
    int open = 0;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        open |= ag_server_timeout_dispose(s, lists[i]) != 0;
    if (open)
        return;
    ag_map_dispose(&n->sessions);
    ag_ptrmap_dispose(&n->watched);
    ag_eio_buf_dispose(&n->scratch_payload);
    ag_eio_buf_dispose(&n->scratch_event);
    free(n);
}
