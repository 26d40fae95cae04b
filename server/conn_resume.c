/*
 * Resume, the connection's side (conn.h "Resume", README "Resume"): a resumable connection's state and the store's copy
 * of it, the node's away connections and their window, a resume, a takeover from a node that died, a hand-over, and the
 * graceful restart's side (what a connection holds, read out and made again). conn.c is the connection itself; what the
 * two share is conn_internal.h.
 */
#include "conn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "limit.h"

/* The connection a client left for the one it resumed (README "Resume"): counted as "other". */
static const ag_disconnect_t DISCONNECT_RESUMED = {1000, "resumed", 0};

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

void ag__conn_record_frame(ag_conn_t *c, const ag_frame_t *f, const char *message_id)
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

void ag_conn_record_who(ag_conn_t *c)
{
    /* a resumable connection's record says who it is: a node that takes it over gives it that identity again */
    if (c->_resume != NULL && !ag_conn_is_closed(c))
        record_open(c, c->_resume->token);
}

/* --- the away list --- */

void ag__conn_away_leave(ag_conn_t *c)
{
    ag__conn_resume_t *r = c->_resume;
    if (r == NULL || !r->away)
        return;
    r->away = 0;
    if (h2o_timeout_is_linked(&r->expiry))
        h2o_timeout_unlink(&r->expiry);
    c->server->stats.conns_away--;
}

void ag__conn_on_away_expired(h2o_timeout_entry_t *entry)
{
    ag__conn_resume_t *r = H2O_STRUCT_FROM_MEMBER(ag__conn_resume_t, expiry, entry);
    ag_conn_t *c = r->conn;
    c->server->stats.away_expired++;
    ag_debug("conn", c->id, "not back within general.resumeWindow");
    ag_conn_away_end(c, NULL);
}

/* --- resume --- */

static void replay_one(ag_frame_t *f, void *data)
{
    ag__conn_queue_frame(data, f);
}

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
    ag__conn_resume_t *r = calloc(1, sizeof(*r));
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

int ag_conn_can_replay(const ag_conn_t *c, uint64_t last_seq)
{
    const ag__conn_resume_t *r = c->_resume;
    return r != NULL && last_seq <= r->outbox.seq && last_seq >= r->outbox.floor;
}

int ag_conn_resume(ag_conn_t *c, ag_conn_t *carrier, uint64_t last_seq)
{
    ag__conn_resume_t *r = c->_resume;
    if (r == NULL || ag_conn_is_closed(c) || !ag_conn_can_replay(c, last_seq) || carrier->_transport == NULL ||
        carrier->_transport->rebind == NULL || (c->_transport != NULL && c->_transport->rebind == NULL))
        return AG_ENOENT;
    const ag_transport_t *t = carrier->_transport, *t_old = c->_transport;
    void *self = carrier->_transport_self, *self_old = c->_transport_self;
    /* what c's queue holds is numbered in its outbox or kept in its rooms' history: replayed from what the client has */
    ag__conn_queue_clear(c);
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
        ag__conn_finish(carrier);
        ag_conn_release(carrier);
        ag__conn_away_leave(c);
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
    ag__conn_finish(c);
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
    /* ag__conn_finish removes entries: collect first */
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
    const ag__conn_resume_t *r = c->_resume;
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
    ag__conn_resume_t *r = calloc(1, sizeof(*r));
    if (c == NULL || r == NULL || (c->fingerprint = strdup(saved->fingerprint)) == NULL ||
        (saved->user != NULL && (c->user = strdup(saved->user)) == NULL)) {
        if (c != NULL)
            ag__conn_free_fields(c);
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
        ag__conn_free_fields(c);
        free(c);
        return NULL;
    }
    s->num_conns++;
    s->stats.conns_away++;
    r->expiry.cb = ag__conn_on_away_expired;
    h2o_timeout_link(s->loop, &s->away->window, &r->expiry);
    /* the window it has left, not a new one: it went away before the restart (h2o keeps a list in link order, which
     * the caller's shortest-first order preserves) */
    uint64_t left = saved->left_ms < window ? saved->left_ms : window;
    r->expiry.registered_at -= window - left;
    ag_debug("conn", c->id, "restored: resumable for %llu ms", (unsigned long long)left);
    return c;
}

void ag_conn_hold_begin(ag_conn_t *c)
{
    if (c->_resume != NULL)
        c->_resume->holding = 1;
}

void ag_conn_hold_end(ag_conn_t *c, ag_frame_t **first, size_t n, ag_frame_t *then)
{
    ag__conn_resume_t *r = c->_resume;
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
