/*
 * The resume verb (resume.h). The connection layer keeps what an away connection is sent and hands a carrier over
 * (conn.h, "Resume"); the rooms keep their history in the store (rooms.h, ag__rooms_replay); this file asks both and
 * answers the client.
 */
#include "resume.h"

#include <stdlib.h>
#include <string.h>
#include "actions.h"
#include "cluster.h"
#include "node.h"
#include "outbox.h"
#include "push.h"
#include "rooms.h"
#include "token.h"

#define NOT_RESUMED "not resumed: "
/* The reasons a client is told (README "Resume"). */
#define R_UNKNOWN "unknown connection or wrong token"
#define R_OUTBOX "missed messages are no longer kept"
#define R_OFF "resume is off"
#define R_BUSY "resume must be the first request"
#define R_ELSEWHERE "the connection is on another worker"

/* A resume of a connection no node here holds: taken over from the store when its node died (below). 1 when started (it
 * answers), 0 when the store keeps no records. */
static int takeover(ag_conn_t *c, const char *id, const char *token, uint64_t seq, const json_t *offsets, const json_t *message_id);

static void answer(ag_conn_t *c, json_t *reply)
{
    ag_frame_t *f = reply != NULL ? ag_frame_from_json(reply) : NULL;
    if (f != NULL)
        ag_conn_send_unnumbered(c, f);
    if (f != NULL)
        ag_frame_release(f);
    json_decref(reply);
}

/* c is a fresh connection: nothing it did may be lost when it becomes resumable or hands itself over. */
static int is_fresh(const ag_conn_t *c)
{
    return c->num_rooms == 0 && c->joining == 0 && c->pending_actions == 0;
}

/* Makes c resumable and says so (data {id, token, seq}); with reason, as the answer to a resume that failed. */
static void answer_resumable(ag_conn_t *c, const json_t *message_id, const char *reason)
{
    char token[AG_RESUME_TOKEN_LEN + 1];
    int ret = is_fresh(c) ? ag_conn_resumable(c, token) : AG_EBUSY;
    const char *why = ret == AG_OK ? NULL : ret == AG_EBUSY ? R_BUSY : ret == AG_EINVAL ? R_OFF : "server error";
    char text[128];
    json_t *data;
    if (reason != NULL) {
        c->server->stats.resumes_refused++;
        snprintf(text, sizeof(text), NOT_RESUMED "%s", reason);
        data = json_pack("{s:b,s:s}", "resumed", 0, "reason", reason);
    } else {
        snprintf(text, sizeof(text), "%s", why != NULL ? why : "");
        data = json_object();
    }
    if (data != NULL && ret == AG_OK) {
        json_object_set_new(data, "id", json_string(c->id));
        json_object_set_new(data, "token", json_string(token));
        json_object_set_new(data, "seq", json_integer(0));
        /* where this connection lives (several workers): the new connection of a resume asks to be made there */
        const char *route = ag_cluster_tag(c->server);
        if (route != NULL)
            json_object_set_new(data, "route", json_string(route));
    }
    answer(c, ag__verb_reply(reason != NULL || why != NULL ? text : NULL, data, message_id));
    json_decref(data);
}

/* An away connection that can never be resumed now ends as it would have without resume. */
static void give_up(ag_conn_t *old)
{
    if (ag_conn_is_away(old))
        ag_conn_away_end(old, NULL);
    else
        ag_conn_close(old, &AG_DISCONNECT_TRANSPORT_ERROR);
}

typedef struct {
    ag_conn_t *carrier; /* a reference */
    uint64_t seq;
    json_t *message_id;
} pending_t;

static const char R_GONE[] = "the new connection went meanwhile";

/* The end of a resume's replay (both kinds: the verb, socket.io's CONNECT): old takes carrier's place and gets frames[0..n)
 * (what it missed in its rooms), then `then` (the answer; may be NULL), then the live lines it held while the history was
 * read (the client drops those it already has, by offset). NULL when old carries on; else why not: R_GONE (nobody to
 * answer: the away connection waits on, what it held goes as its rooms' history has it), or the refusal's reason (old
 * ended when it can never be resumed now, as it would have without resume). */
static const char *replay_end(ag_conn_t *old, ag_conn_t *carrier, const char *reason, uint64_t seq, ag_frame_t **frames, size_t n,
                              ag_frame_t *then)
{
    if (ag_conn_is_closed(carrier)) {
        ag_conn_hold_end(old, NULL, 0, NULL);
        return R_GONE;
    }
    if (reason == NULL && (ag_conn_is_closed(old) || old == carrier || !is_fresh(carrier))) {
        ag_conn_hold_end(old, NULL, 0, NULL);
        return ag_conn_is_closed(old) ? R_UNKNOWN : R_BUSY;
    }
    if (reason != NULL || ag_conn_resume(old, carrier, seq) != AG_OK) {
        ag_conn_hold_end(old, NULL, 0, NULL);
        give_up(old);
        return reason != NULL ? reason : R_OUTBOX;
    }
    ag_conn_hold_end(old, frames, n, then);
    return NULL;
}

static void on_replayed(ag_conn_t *old, const char *reason, ag_frame_t **frames, size_t n, void *ud)
{
    pending_t *p = ud;
    json_t *data = json_pack("{s:b,s:s,s:I}", "resumed", 1, "id", old->id, "seq", (json_int_t)p->seq);
    json_t *reply = ag__verb_reply(NULL, data, p->message_id);
    ag_frame_t *f = reply != NULL ? ag_frame_from_json(reply) : NULL;
    const char *why = replay_end(old, p->carrier, reason, p->seq, frames, n, f);
    if (why != NULL && why != R_GONE)
        answer_resumable(p->carrier, p->message_id, why);
    if (f != NULL)
        ag_frame_release(f);
    json_decref(reply);
    json_decref(data);
    ag_conn_release(p->carrier);
    json_decref(p->message_id);
    free(p);
}

void ag__resume_verb(ag_conn_t *c, json_t *rest, const json_t *message_id)
{
    json_t *id = json_object_get(rest, "id"), *token = json_object_get(rest, "token"), *seq = json_object_get(rest, "seq");
    if (id == NULL) {
        answer_resumable(c, message_id, NULL);
        return;
    }
    if (!is_fresh(c) || ag_conn_is_resumable(c)) {
        answer(c, ag__verb_reply(R_BUSY, NULL, message_id));
        return;
    }
    ag_conn_t *old = json_is_string(id) && json_is_string(token)
                         ? ag_conn_find_resumable(c->server, json_string_value(id), json_string_value(token))
                         : NULL;
    json_int_t last = json_is_integer(seq) ? json_integer_value(seq) : -1;
    /* The token names the worker that made it. Without records in the store only that worker can hold it; with them (Redis)
     * a takeover is tried from any worker: the claim refuses while the owner lives (a sibling worker of this process
     * among them), and a dead node's connection is taken whichever worker its client reached. */
    int records = c->server->store->ops->rconn_claim != NULL;
    if (old == NULL && last >= 0 && json_is_string(id) && json_is_string(token) &&
        (records || !ag_conn_token_elsewhere(c->server, json_string_value(token))) &&
        takeover(c, json_string_value(id), json_string_value(token), (uint64_t)last, json_object_get(rest, "offsets"), message_id))
        return;
    if (old == NULL || last < 0) {
        /* The away connection, if any, stays where it is (a connection does not move between loops) and ends when its
         * window does: this one starts afresh, as after any refusal. */
        int elsewhere = old == NULL && json_is_string(token) && ag_conn_token_elsewhere(c->server, json_string_value(token));
        answer_resumable(c, message_id, elsewhere ? R_ELSEWHERE : R_UNKNOWN);
        return;
    }
    if (!ag_conn_can_replay(old, (uint64_t)last)) {
        if (ag_conn_is_away(old))
            ag_conn_away_end(old, NULL);
        else
            ag_conn_close(old, &AG_DISCONNECT_TRANSPORT_ERROR);
        answer_resumable(c, message_id, R_OUTBOX);
        return;
    }
    pending_t *p = malloc(sizeof(*p));
    if (p == NULL) {
        answer(c, ag__verb_reply("server error", NULL, message_id));
        return;
    }
    p->carrier = ag_conn_addref(c);
    p->seq = (uint64_t)last;
    p->message_id = json_incref((json_t *)message_id);
    json_t *offsets = json_object_get(rest, "offsets");
    ag_conn_hold_begin(old);
    ag__rooms_replay(old, json_is_object(offsets) ? offsets : NULL, on_replayed, p);
}

typedef struct {
    ag_conn_t *carrier; /* a reference */
    uint64_t seq;
    ag__resume_done_cb done;
    void *ud;
} take_over_t;

static void on_taken_over(ag_conn_t *old, const char *reason, ag_frame_t **frames, size_t n, void *ud)
{
    take_over_t *t = ud;
    const char *why = replay_end(old, t->carrier, reason, t->seq, frames, n, NULL);
    if (why == NULL)
        t->done(t->carrier, old, NULL, NULL, t->ud);
    else if (why != R_GONE)
        t->done(t->carrier, NULL, why, NULL, t->ud);
    ag_conn_release(t->carrier);
    free(t);
}

/* Another node or worker may hold it (below): 1 when that is being found out (done runs then), else 0. */
static int take_over_elsewhere(ag_conn_t *carrier, const char *id, const char *token, ag__resume_position_cb position,
                               ag__resume_done_cb done, void *ud);

void ag__resume_take_over(ag_conn_t *carrier, const char *id, const char *token, uint64_t last_seq, const json_t *offsets,
                          ag__resume_position_cb position, ag__resume_done_cb done, void *ud)
{
    if (!is_fresh(carrier)) {
        done(carrier, NULL, R_BUSY, NULL, ud);
        return;
    }
    ag_conn_t *old = ag_conn_find_resumable(carrier->server, id, token);
    if (old == NULL && ag_map_get(&carrier->server->conns, id) == NULL &&
        take_over_elsewhere(carrier, id, token, position, done, ud))
        return;
    if (old == NULL || old == carrier) {
        done(carrier, NULL, R_UNKNOWN, NULL, ud);
        return;
    }
    if (!ag_conn_can_replay(old, last_seq)) {
        give_up(old);
        done(carrier, NULL, R_OUTBOX, NULL, ud);
        return;
    }
    take_over_t *t = malloc(sizeof(*t));
    if (t == NULL) {
        done(carrier, NULL, "server error", NULL, ud);
        return;
    }
    t->carrier = ag_conn_addref(carrier);
    t->seq = last_seq;
    t->done = done;
    t->ud = ud;
    ag_conn_hold_begin(old);
    ag__rooms_replay(old, offsets, on_taken_over, t);
}

char *ag__resume_key(const json_t *message_id)
{
    /* "7" and 7 are one messageId to actionhero's client, which matches replies with == */
    if (json_is_string(message_id))
        return strdup(json_string_value(message_id));
    if (!json_is_integer(message_id))
        return NULL;
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(message_id));
    return strdup(buf);
}

int ag__resume_seen(ag_conn_t *c, const json_t *msg)
{
    if (!ag_conn_is_resumable(c))
        return 0;
    const json_t *mid = json_object_get(msg, "messageId");
    char *key = ag__resume_key(mid);
    if (key == NULL)
        return 0;
    int seen = 0;
    ag_frame_t *f = ag_conn_reply_of(c, key);
    if (f != NULL) {
        seen = 1;
        ag_conn_send_unnumbered(c, f); /* the same number: a client that has it drops it */
    }
    for (ag_action_req_t *r = c->requests; !seen && r != NULL; r = r->conn_next)
        seen = json_equal(r->message_id, (json_t *)mid);
    free(key);
    return seen;
}

/* --- taking over a connection whose node died (README "Resume"): its record in the store --- */

typedef struct {
    ag_conn_t *carrier; /* a reference */
    char id[48];
    char token[AG_RESUME_TOKEN_LEN + 1];
    uint64_t seq;
    json_t *offsets; /* the client's, or NULL */
    json_t *message_id;
    json_t *rec; /* the claimed record */
    size_t pending;
    const char *reason;
    /* socket.io's CONNECT (ag__resume_take_over) rather than the verb: how it is answered, and its tries */
    ag__resume_position_cb position;
    ag__resume_done_cb done;
    void *ud;
    ag_cluster_call_t *call;
    h2o_timeout_entry_t retry;
    uint64_t deadline;
} takeover_t;

static void takeover_free(takeover_t *t)
{
    if (h2o_timeout_is_linked(&t->retry))
        h2o_timeout_unlink(&t->retry);
    if (t->call != NULL)
        ag_cluster_call_cancel(t->call);
    ag_conn_release(t->carrier);
    json_decref(t->offsets);
    json_decref(t->message_id);
    json_decref(t->rec);
    free(t);
}

static uint64_t hex64(const char *e)
{
    return e != NULL ? strtoull(e, NULL, 16) : 0;
}

/* Where a room's replay starts: where the history stood at the join, or the client's later offset. */
static uint64_t replay_from(const takeover_t *t, const char *room, const json_t *at)
{
    uint64_t after = (uint64_t)json_integer_value(json_array_get(at, 1));
    json_t *o = json_object_get(t->offsets, room);
    if (json_is_integer(o) && json_integer_value(o) > 0 && (uint64_t)json_integer_value(o) > after)
        after = (uint64_t)json_integer_value(o);
    return after;
}

/* Refused for good: the record is this node's now, and goes; the carrier starts afresh. */
static void takeover_refuse(takeover_t *t, const char *reason)
{
    ag_store_t *st = t->carrier->server->store;
    if (t->rec != NULL && st->ops->rconn_del != NULL)
        st->ops->rconn_del(st, t->id);
    if (!ag_conn_is_closed(t->carrier) && t->done != NULL)
        t->done(t->carrier, NULL, reason, NULL, t->ud);
    else if (!ag_conn_is_closed(t->carrier))
        answer_resumable(t->carrier, t->message_id, reason);
    takeover_free(t);
}

/* c became the connection but cannot be resumed whole after all: the client is told why, and c ends (the client's next
 * try finds nothing and starts afresh). */
static void adopted_fail(ag_conn_t *c, takeover_t *t, const char *reason)
{
    if (t->done != NULL) {
        /* socket.io: the CONNECT is not answered; the client comes back, finds nothing and starts afresh */
        ag_log(AG_LOG_INFO, "resume", c->id, "taken over but not resumed: %s", reason);
        ag_conn_hold_end(c, NULL, 0, NULL);
        ag_conn_close(c, &AG_DISCONNECT_TRANSPORT_ERROR);
        return;
    }
    char text[128];
    snprintf(text, sizeof(text), NOT_RESUMED "%s", reason);
    json_t *data = json_pack("{s:b,s:s}", "resumed", 0, "reason", reason);
    json_t *reply = ag__verb_reply(text, data, t->message_id);
    ag_frame_t *f = reply != NULL ? ag_frame_from_json(reply) : NULL;
    ag_conn_hold_end(c, NULL, 0, f);
    if (f != NULL)
        ag_frame_release(f);
    json_decref(reply);
    json_decref(data);
    ag_conn_close(c, &AG_DISCONNECT_TRANSPORT_ERROR);
}

static void on_taken_replayed(ag_conn_t *c, const char *reason, ag_frame_t **frames, size_t n, void *ud)
{
    takeover_t *t = ud;
    if (ag_conn_is_closed(c)) {
        /* gone meanwhile: its record stays, for the client's next try */
    } else if (reason != NULL) {
        /* the rooms' history moved on between the check and the replay: it cannot be resumed whole */
        adopted_fail(c, t, AG_RESUME_HISTORY_GONE);
    } else if (t->done != NULL) {
        /* what it missed, then the live lines that came meanwhile; the transport puts its answer in front */
        ag_conn_hold_end(c, frames, n, NULL);
        t->done(c, c, NULL, json_object_get(t->rec, "carrier"), t->ud);
    } else {
        json_t *data = json_pack("{s:b,s:s,s:I}", "resumed", 1, "id", c->id, "seq", (json_int_t)t->seq);
        /* the connection lives here now: the client's next carrier names this node */
        const char *route = ag_cluster_tag(c->server);
        if (data != NULL && route != NULL)
            json_object_set_new(data, "route", json_string(route));
        json_t *reply = ag__verb_reply(NULL, data, t->message_id);
        ag_frame_t *f = reply != NULL ? ag_frame_from_json(reply) : NULL;
        /* what it missed, the answer, then the live lines that came meanwhile (the client drops those it has) */
        ag_conn_hold_end(c, frames, n, f);
        if (f != NULL)
            ag_frame_release(f);
        json_decref(reply);
        json_decref(data);
    }
    takeover_free(t);
}

static void on_room_adopted(ag_conn_t *c, const char *err, void *data)
{
    takeover_t *t = data;
    if (err != NULL && t->reason == NULL)
        t->reason = AG_RESUME_HISTORY_GONE; /* the room is gone */
    if (--t->pending != 0)
        return;
    if (t->reason != NULL || ag_conn_is_closed(c)) {
        if (!ag_conn_is_closed(c))
            adopted_fail(c, t, AG_RESUME_HISTORY_GONE);
        takeover_free(t);
        return;
    }
    ag__rooms_replay(c, t->offsets, on_taken_replayed, t);
}

static void adopt(takeover_t *t)
{
    ag_conn_t *c = t->carrier;
    if (ag_conn_is_closed(c)) {
        takeover_free(t);
        return;
    }
    if (!is_fresh(c) || ag_conn_is_resumable(c)) {
        takeover_refuse(t, R_BUSY);
        return;
    }
    if (t->done != NULL) {
        /* the fresh connection's own frames (its welcome) are not the connection's it becomes */
        ag_frame_t *f;
        while ((f = ag_conn_shift(c)) != NULL)
            ag_frame_release(f);
    }
    int ret = ag_conn_adopt(c, t->id, t->token, t->rec, t->seq);
    if (ret == AG_EINVAL) {
        takeover_refuse(t, R_UNKNOWN);
        return;
    }
    if (ret != AG_OK) {
        /* c is the connection now, and what its client missed is not all there: it ends, as it would have */
        adopted_fail(c, t, R_OUTBOX);
        takeover_free(t);
        return;
    }
    /* the expiry of the token it came with, not the carrier's: a connection does not outlive its token on another node */
    ag_token_unwatch(c);
    ag_token_watch(c);
    ag_log(AG_LOG_INFO, "resume", c->id, "taken over from node %s%s", json_string_value(json_object_get(t->rec, "node")),
           json_object_get(t->rec, "carrier") != NULL ? " (handed over)" : "");
    /* its rooms again, in the order it joined them (the record keeps no order: by name), then their lines it missed */
    json_t *rooms = json_object_get(t->rec, "rooms"), *at;
    const char *room;
    t->pending = 1;
    json_object_foreach(rooms, room, at)
    {
        t->pending++;
        ag__rooms_adopt(c, room, hex64(json_string_value(json_array_get(at, 0))),
                        (uint64_t)json_integer_value(json_array_get(at, 1)), on_room_adopted, t);
    }
    on_room_adopted(c, NULL, t);
}

typedef struct {
    takeover_t *t;
    uint64_t epoch;
} check_t;

static void checks_done(takeover_t *t)
{
    if (--t->pending != 0)
        return;
    if (t->reason != NULL)
        takeover_refuse(t, t->reason);
    else
        adopt(t);
}

static void on_checked(void *data, const char *err, json_t *res)
{
    check_t *k = data;
    takeover_t *t = k->t;
    const char *e = json_string_value(json_object_get(res, "epoch"));
    if ((err != NULL || hex64(e) != k->epoch || k->epoch == 0) && t->reason == NULL)
        t->reason = AG_RESUME_HISTORY_GONE;
    free(k);
    checks_done(t);
}

static void retry_later(takeover_t *t);

/* The record came (claimed, or handed over): the client's position is checked against it, then the rooms' history. */
static void got_record(takeover_t *t, json_t *res)
{
    ag_server_t *s = t->carrier->server;
    if (t->done != NULL && ag_conn_is_closed(t->carrier)) {
        takeover_free(t); /* nobody to answer, and the transport's state (position's) may be gone with it */
        return;
    }
    t->rec = json_incref(res);
    if (t->position != NULL) {
        json_decref(t->offsets);
        if ((t->offsets = json_object()) == NULL || t->position(t->ud, res, &t->seq, t->offsets) != 0) {
            takeover_refuse(t, "a pid or an offset that does not fit");
            return;
        }
    }
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(res, "seq")),
             floor = (uint64_t)json_integer_value(json_object_get(res, "floor"));
    /* a client ahead of the record saw frames whose writes died with their node (ag_conn_adopt): it missed none of them */
    if (t->seq < floor || (t->seq > seq && t->seq - seq > (uint64_t)s->config->general.resumeOutboxFrames)) {
        takeover_refuse(t, R_OUTBOX);
        return;
    }
    /* every room's history must still hold what the client missed, in the same life of the room, before c becomes it */
    json_t *rooms = json_object_get(res, "rooms"), *at;
    const char *room;
    t->pending = 1;
    json_object_foreach(rooms, room, at)
    {
        check_t *k = malloc(sizeof(*k));
        if (k == NULL) {
            t->reason = "server error";
            break;
        }
        k->t = t;
        k->epoch = hex64(json_string_value(json_array_get(at, 0)));
        t->pending++;
        s->store->ops->history_since(s->store, room, replay_from(t, room, at), on_checked, k);
    }
    checks_done(t);
}

static void on_claimed(void *data, const char *err, json_t *res)
{
    takeover_t *t = data;
    ag_server_t *s = t->carrier->server;
    if (err != NULL && strcmp(err, AG_STORE_RCONN_ALIVE) == 0 && t->done != NULL) {
        /* socket.io-client waits for its CONNECT's answer: asked again until the owner hands it over or its heartbeat
         * expires (redis.nodeTtl), and no longer */
        if (ag_conn_is_closed(t->carrier))
            takeover_free(t);
        else if (ag_now_ms() < t->deadline)
            retry_later(t);
        else
            takeover_refuse(t, "its node neither hands it over nor died");
        return;
    }
    if (err != NULL && strcmp(err, AG_STORE_RCONN_ALIVE) == 0 &&
        (!json_is_true(json_object_get(res, "routed")) ||
         ag_cluster_is_unreachable(s, json_string_value(json_object_get(res, "tag")) ?: ""))) {
        /* Its node refused a forward from here, or its route expired before its heartbeat: dead, most likely, though its
         * heartbeat is still there. Never taken from a node that may be alive (a slow one would hold it twice): the
         * carrier ends unanswered, and the client tries again, until the heartbeat expires (redis.nodeTtl) or the node
         * answers. */
        if (!ag_conn_is_closed(t->carrier))
            ag_conn_close(t->carrier, &AG_DISCONNECT_TRANSPORT_ERROR);
        takeover_free(t);
        return;
    }
    if (err != NULL && strcmp(err, AG_STORE_RCONN_ALIVE) == 0) {
        /* its node lives and can be reached (a sibling worker, or a node the client did not name): the token matched,
         * so saying where it is tells the client nothing it could not know; the away connection stays there */
        takeover_refuse(t, R_ELSEWHERE);
        return;
    }
    if (err != NULL || !json_is_object(res)) {
        takeover_refuse(t, R_UNKNOWN);
        return;
    }
    got_record(t, res);
}

static void claim(takeover_t *t)
{
    ag_store_t *st = t->carrier->server->store;
    char hash[2 * 32 + 1];
    ag_conn_token_hash(t->token, hash);
    st->ops->rconn_claim(st, t->id, hash, on_claimed, t);
}

static int takeover(ag_conn_t *c, const char *id, const char *token, uint64_t seq, const json_t *offsets, const json_t *message_id)
{
    ag_store_t *st = c->server->store;
    if (st->ops->rconn_claim == NULL || strlen(id) >= sizeof(((takeover_t *)0)->id) || strlen(token) != AG_RESUME_TOKEN_LEN)
        return 0;
    takeover_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return 0;
    t->carrier = ag_conn_addref(c);
    snprintf(t->id, sizeof(t->id), "%s", id);
    memcpy(t->token, token, AG_RESUME_TOKEN_LEN + 1);
    t->seq = seq;
    t->offsets = json_is_object(offsets) ? json_incref((json_t *)offsets) : NULL;
    t->message_id = json_incref((json_t *)message_id);
    claim(t);
    return 1;
}

/* --- a live hand-over (README "Resume"): socket.io's CONNECT reached a node or worker that does not hold the connection
 * --- */

/* The pause between two asks while the holder is busy or a dead owner's heartbeat lasts, and how long a holder that
 * stays busy is waited for (socket.io-client waits for the CONNECT's answer meanwhile). */
#define RETRY_MS 150
#define BUSY_WAIT_MS 3000

static void ask(takeover_t *t);

static void on_retry(h2o_timeout_entry_t *entry)
{
    takeover_t *t = H2O_STRUCT_FROM_MEMBER(takeover_t, retry, entry);
    if (ag_conn_is_closed(t->carrier))
        takeover_free(t);
    else
        ask(t);
}

static void retry_later(takeover_t *t)
{
    ag_server_t *s = t->carrier->server;
    if (!s->resume_retry_ready) {
        h2o_timeout_init(s->loop, &s->resume_retry, RETRY_MS);
        s->resume_retry_ready = 1;
    }
    t->retry.cb = on_retry;
    h2o_timeout_link(s->loop, &s->resume_retry, &t->retry);
}

static int handover_settled(void *data, const json_t *answer)
{
    (void)data;
    return json_is_object(json_object_get(answer, "record")) || json_is_true(json_object_get(answer, "busy"));
}

static void on_handed(void *data, const json_t *nodes, const json_t *answers, const char *err)
{
    (void)nodes;
    (void)err; /* the other nodes could not be asked: as if none held it */
    takeover_t *t = data;
    ag_store_t *st = t->carrier->server->store;
    t->call = NULL;
    const char *node;
    json_t *a, *rec = NULL;
    int busy = 0;
    json_object_foreach((json_t *)answers, node, a)
    {
        if (json_is_object(json_object_get(a, "record")))
            rec = json_object_get(a, "record");
        busy |= json_is_true(json_object_get(a, "busy"));
    }
    if (ag_conn_is_closed(t->carrier))
        takeover_free(t); /* a record that came is lost with it: the connection ended where it was */
    else if (rec != NULL)
        got_record(t, rec);
    else if (busy && ag_now_ms() < t->deadline)
        retry_later(t);
    else if (busy)
        takeover_refuse(t, "the connection stayed busy on another node");
    else if (st->ops->rconn_claim != NULL)
        claim(t);
    else
        takeover_refuse(t, R_UNKNOWN);
}

static void ask(takeover_t *t)
{
    char hash[2 * 32 + 1];
    ag_conn_token_hash(t->token, hash);
    /* never the token: the call travels to every node */
    json_t *call = json_pack("{s:s,s:s,s:s,s:b}", "op", AG_RESUME_OP_HANDOVER, "id", t->id, "th", hash, "state",
                             t->carrier->carrier_state_save != NULL);
    if (call == NULL) {
        takeover_refuse(t, "server error");
        return;
    }
    ag_cluster_call_t *k = ag_cluster_call(t->carrier->server, call, handover_settled, on_handed, t);
    json_decref(call);
    if (k != NULL)
        t->call = k; /* else on_handed ran already, and t may be gone */
}

static int take_over_elsewhere(ag_conn_t *carrier, const char *id, const char *token, ag__resume_position_cb position,
                               ag__resume_done_cb done, void *ud)
{
    ag_server_t *s = carrier->server;
    int claims = s->store->ops->rconn_claim != NULL;
    if ((ag_cluster_tag(s) == NULL && !claims) || position == NULL || strlen(id) >= sizeof(((takeover_t *)0)->id) ||
        strlen(token) != AG_RESUME_TOKEN_LEN)
        return 0;
    takeover_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return 0;
    t->carrier = ag_conn_addref(carrier);
    snprintf(t->id, sizeof(t->id), "%s", id);
    memcpy(t->token, token, AG_RESUME_TOKEN_LEN + 1);
    t->position = position;
    t->done = done;
    t->ud = ud;
    t->deadline = ag_now_ms() + (claims ? (uint64_t)s->config->redis.nodeTtl * 1000 + BUSY_WAIT_MS : BUSY_WAIT_MS);
    ask(t);
    return 1;
}

/* The holder's side: the record of away connection c, as rconn_claim gives one, with the transport's own state. */
static json_t *export_record(ag_conn_t *c)
{
    const char *token;
    const ag_outbox_t *o;
    uint64_t left;
    if (ag_conn_resume_info(c, &token, &o, &left) != AG_OK)
        return NULL;
    const char *tag = ag_cluster_tag(c->server);
    json_t *frames = json_array(), *rooms = json_object();
    json_t *rec = json_pack("{s:s,s:s,s:I,s:I,s:s,s:o,s:o}", "node", c->server->node_id, "tag", tag != NULL ? tag : "", "seq",
                            (json_int_t)o->seq, "floor", (json_int_t)o->floor, "fingerprint",
                            c->fingerprint != NULL ? c->fingerprint : "", "frames", frames, "rooms", rooms);
    if (rec == NULL)
        return NULL;
    for (size_t i = 0; i < o->n; i++) {
        const ag_outbox_entry_t *e = ag_outbox_at(o, i);
        json_t *text = json_stringn(e->frame->data, e->frame->len);
        if (text == NULL || json_array_append_new(frames, json_pack("[I,s?,o]", (json_int_t)e->seq, e->message_id, text)) != 0) {
            json_decref(rec);
            return NULL;
        }
    }
    for (const ag_room_member_t *m = c->rooms_first; m != NULL; m = ag__room_next(m)) {
        uint64_t epoch, since;
        char e[17];
        ag__room_resume_point(m, &epoch, &since);
        snprintf(e, sizeof(e), "%016llx", (unsigned long long)epoch);
        if (json_object_set_new(rooms, ag__room_name(m), json_pack("[s,I]", e, (json_int_t)since)) != 0) {
            json_decref(rec);
            return NULL;
        }
    }
    json_t *who = ag_conn_who(c);
    if (who != NULL)
        json_object_set_new(rec, "who", who);
    json_t *carried = c->carrier_state_save != NULL && c->carrier_state != NULL ? c->carrier_state_save(c->carrier_state) : NULL;
    if (carried != NULL)
        json_object_set_new(rec, "carrier", carried);
    return rec;
}

static json_t *hand_over_call(ag_server_t *s, const json_t *call)
{
    const char *id = json_string_value(json_object_get(call, "id")), *th = json_string_value(json_object_get(call, "th"));
    ag_conn_t *c = id != NULL && th != NULL ? ag_conn_find(s, id) : NULL;
    const char *token;
    const ag_outbox_t *o;
    uint64_t left;
    char hash[2 * 32 + 1];
    if (c == NULL || strlen(th) != sizeof(hash) - 1 || ag_conn_resume_info(c, &token, &o, &left) != AG_OK)
        return json_object();
    ag_conn_token_hash(token, hash);
    unsigned char diff = 0;
    for (size_t i = 0; i < sizeof(hash) - 1; i++)
        diff |= (unsigned char)(hash[i] ^ th[i]);
    /* a transport with state of its own (socket.io) takes over only a connection of its kind, and the others none */
    if (diff != 0 || json_is_true(json_object_get(call, "state")) != (c->carrier_state_save != NULL))
        return json_object();
    /* Live on a carrier, or something of it in flight (an action, a join, the connect hook): not handed over now, the
     * asker asks again. An export that waited for them would need the call to answer later; the asker's pause costs
     * one call per RETRY_MS and is bounded, and what it waits for is answered in the ordinary way meanwhile. */
    if (!ag_conn_is_away(c) || c->pending_actions != 0 || c->joining != 0 || c->hook_call != NULL)
        return json_pack("{s:b}", "busy", 1);
    json_t *rec = export_record(c);
    if (rec == NULL)
        return json_object();
    ag_log(AG_LOG_INFO, "resume", c->id, "handed over");
    ag_conn_hand_over_end(c);
    return json_pack("{s:o}", "record", rec);
}

static json_t *on_call(ag_server_t *s, const json_t *call)
{
    const char *op = json_string_value(json_object_get(call, "op"));
    return op != NULL && strcmp(op, AG_RESUME_OP_HANDOVER) == 0 ? hand_over_call(s, call) : ag__push_call(s, call);
}

void ag__resume_init(ag_server_t *s)
{
    ag_cluster_set_call_receiver(s, on_call);
}

void ag__resume_dispose(ag_server_t *s)
{
    if (s->resume_retry_ready && ag_server_timeout_dispose(s, &s->resume_retry) == 0)
        s->resume_retry_ready = 0;
}
