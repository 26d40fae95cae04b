#include "redis_adapter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/async.h>
#include "common.h"
#include "store.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define TICK_MS 100
#define SUB_BATCH 64

typedef enum { ST_DOWN = 0, ST_CONNECTING, ST_HANDSHAKE, ST_UP } state_t;

/* Event-library state of one hiredis context (ac->ev.data); freed by the cleanup hook. */
typedef struct st_evstate_t {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
    int reading, writing, write_armed;
} evstate_t;

typedef struct st_waiter_t {
    void (*cb)(void *data);
    void *data;
    struct st_waiter_t *next;
} waiter_t;

typedef struct st_pending_t {
    ag_redis_t *r;
    ag_redis_reply_cb cb;
    void *data;
    h2o_timeout_entry_t timer;
    uint64_t sent_ns; /* monotonic */
} pending_t;

struct st_ag_redis_t {
    ag_redis_options_t opts;
    redisAsyncContext *ac; /* the live context, or NULL */
    state_t state;
    const char *fail_reason; /* what commands failed by the current loss are told */
    int handshake_left;
    uint64_t backoff_ms, retry_at;
    h2o_timeout_t cmd_timeout, connect_timeout, tick;
    h2o_timeout_entry_t connect_entry, tick_entry;
    /* pub/sub: wanted channels, and what this connection sent (1) or Redis confirmed (2) */
    ag_map_t wanted, active;
    int sub_inflight;
    waiter_t *waiters; /* ag_redis_when_subscribed, oldest first */
    waiter_t **waiters_tail;
    ag_store_stats_t stats;
};

/* --- URL --- */

int ag_redis_url_parse(const char *url, ag_redis_url_t *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "redis://", 8) != 0)
        return AG_EINVAL;
    const char *p = url + 8, *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon != NULL ? colon + 1 : p;
        if ((size_t)(at - pw) >= sizeof(out->password))
            return AG_EINVAL;
        memcpy(out->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    const char *hend = end;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return AG_EINVAL;
        if ((size_t)(rb - p - 1) >= sizeof(out->host))
            return AG_EINVAL;
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        hend = rb + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon != NULL)
            hend = colon;
        if ((size_t)(hend - p) >= sizeof(out->host))
            return AG_EINVAL;
        memcpy(out->host, p, (size_t)(hend - p));
    }
    if (out->host[0] == '\0')
        snprintf(out->host, sizeof(out->host), "127.0.0.1");
    if (hend < end && *hend == ':') {
        char *e;
        long port = strtol(hend + 1, &e, 10);
        if (e != end || port <= 0 || port > 65535)
            return AG_EINVAL;
        out->port = (int)port;
    } else if (hend != end) {
        return AG_EINVAL;
    }
    if (*end == '/' && end[1] != '\0') {
        char *e;
        long db = strtol(end + 1, &e, 10);
        if ((*e != '\0' && *e != '?') || db < 0 || db > 1000000)
            return AG_EINVAL;
        out->db = (int)db;
    }
    return 0;
}

/* --- event hooks --- */

static void on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    evstate_t *ev = sock->data;
    /* may free ev through the cleanup hook: touch nothing afterwards */
    redisAsyncHandleRead(ev->ac);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    evstate_t *ev = sock->data;
    ev->write_armed = 0;
    if (ev->writing)
        redisAsyncHandleWrite(ev->ac);
}

static void ev_add_read(void *p)
{
    evstate_t *ev = p;
    if (!ev->reading) {
        ev->reading = 1;
        h2o_socket_read_start(ev->sock, on_readable);
    }
}

static void ev_del_read(void *p)
{
    evstate_t *ev = p;
    if (ev->reading) {
        ev->reading = 0;
        h2o_socket_read_stop(ev->sock);
    }
}

static void ev_add_write(void *p)
{
    evstate_t *ev = p;
    ev->writing = 1;
    if (!ev->write_armed) {
        ev->write_armed = 1;
        h2o_socket_notify_write(ev->sock, on_writable);
    }
}

static void ev_del_write(void *p)
{
    evstate_t *ev = p;
    /* the armed notification cannot be cancelled: it fires once and is ignored */
    ev->writing = 0;
}

static void ev_cleanup(void *p)
{
    evstate_t *ev = p;
    if (ev->reading)
        h2o_socket_read_stop(ev->sock);
    h2o_socket_close(ev->sock);
    free(ev);
}

static int attach(redisAsyncContext *ac, h2o_evloop_t *loop)
{
    int fd = dup(ac->c.fd);
    if (fd == -1)
        return -1;
    evstate_t *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        close(fd);
        return -1;
    }
    ev->ac = ac;
    ev->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    ev->sock->data = ev;
    ac->ev.data = ev;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* --- connection state --- */

static void schedule_retry(ag_redis_t *r)
{
    uint64_t now = h2o_now(r->opts.loop);
    r->retry_at = now + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->backoff_ms * 2;
    if (!h2o_timeout_is_linked(&r->tick_entry))
        h2o_timeout_link(r->opts.loop, &r->tick, &r->tick_entry);
}

/* Runs the ag_redis_when_subscribed callbacks (they may subscribe again: take the list first). */
static void flush_waiters(ag_redis_t *r)
{
    waiter_t *w = r->waiters;
    r->waiters = NULL;
    r->waiters_tail = &r->waiters;
    while (w != NULL) {
        waiter_t *next = w->next;
        w->cb(w->data);
        free(w);
        w = next;
    }
}

static int settled(ag_redis_t *r)
{
    if (r->sub_inflight != 0)
        return 0;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&r->wanted, &it, &k, &v);)
        if (ag_map_get(&r->active, k) != (void *)2)
            return 0;
    return 1;
}

/* The current context is gone or must go. free_ac: this side ends it (timeouts, failed handshake); otherwise hiredis
 * is already freeing it. Commands in flight are failed by hiredis with NULL replies (see on_reply). */
static void lose(ag_redis_t *r, const char *why, int free_ac)
{
    redisAsyncContext *ac = r->ac;
    int was_up = r->state == ST_UP;
    r->ac = NULL;
    r->state = ST_DOWN;
    r->fail_reason = why;
    r->sub_inflight = 0;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&r->active, &it, &k, &v);)
        ag_map_del(&r->active, k);
    if (h2o_timeout_is_linked(&r->connect_entry))
        h2o_timeout_unlink(&r->connect_entry);
    if (free_ac && ac != NULL)
        redisAsyncFree(ac);
    if (was_up && r->opts.on_state != NULL)
        r->opts.on_state(r->opts.data, 0);
    /* nothing is in effect while down; waiting would not make it so */
    flush_waiters(r);
    schedule_retry(r);
}

static void reconcile(ag_redis_t *r);

static void become_up(ag_redis_t *r)
{
    r->state = ST_UP;
    r->backoff_ms = RETRY_MIN_MS;
    r->fail_reason = NULL;
    if (h2o_timeout_is_linked(&r->connect_entry))
        h2o_timeout_unlink(&r->connect_entry);
    if (r->opts.on_message != NULL)
        reconcile(r);
    if (r->opts.on_state != NULL)
        r->opts.on_state(r->opts.data, 1);
}

static void on_handshake_reply(redisAsyncContext *ac, void *_reply, void *_r)
{
    ag_redis_t *r = _r;
    redisReply *reply = _reply;
    if (ac != r->ac)
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        lose(r, reply != NULL ? "redis handshake refused" : "redis connection lost", reply != NULL);
        return;
    }
    if (--r->handshake_left == 0 && r->state == ST_HANDSHAKE)
        become_up(r);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    ag_redis_t *r = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    if (ac != r->ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context (and fails what was queued) after this callback */
        lose(r, "redis unavailable", 0);
        return;
    }
    r->state = ST_HANDSHAKE;
    if (r->handshake_left == 0)
        become_up(r);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    ag_redis_t *r = cac->data;
    if (cac != r->ac)
        return;
    lose(r, "redis connection lost", 0);
}

static void start_connect(ag_redis_t *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->opts.url.host, r->opts.url.port);
    if (ac == NULL) {
        schedule_retry(r);
        return;
    }
    if (ac->err != 0 || attach(ac, r->opts.loop) != 0) {
        redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    r->state = ST_CONNECTING;
    /* AUTH and SELECT go first in the output buffer, before anything queued while connecting */
    r->handshake_left = 0;
    if (r->opts.url.password[0] != '\0' &&
        redisAsyncCommand(ac, on_handshake_reply, r, "AUTH %s", r->opts.url.password) == REDIS_OK)
        r->handshake_left++;
    if (r->opts.url.db != 0 && redisAsyncCommand(ac, on_handshake_reply, r, "SELECT %d", r->opts.url.db) == REDIS_OK)
        r->handshake_left++;
    /* after attach: setting the connect callback arms the first write event */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    h2o_timeout_link(r->opts.loop, &r->connect_timeout, &r->connect_entry);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    ag_redis_t *r = H2O_STRUCT_FROM_MEMBER(ag_redis_t, tick_entry, entry);
    if (r->state != ST_DOWN)
        return;
    if (h2o_now(r->opts.loop) >= r->retry_at)
        start_connect(r);
    else
        h2o_timeout_link(r->opts.loop, &r->tick, &r->tick_entry);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    ag_redis_t *r = H2O_STRUCT_FROM_MEMBER(ag_redis_t, connect_entry, entry);
    lose(r, "redis timeout", 1);
}

ag_redis_t *ag_redis_create(const ag_redis_options_t *opts)
{
    ag_redis_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->opts = *opts;
    if (r->opts.connect_timeout_ms == 0)
        r->opts.connect_timeout_ms = 2000;
    if (r->opts.command_timeout_ms == 0)
        r->opts.command_timeout_ms = 5000;
    r->backoff_ms = RETRY_MIN_MS;
    r->waiters_tail = &r->waiters;
    ag_map_init(&r->wanted);
    ag_map_init(&r->active);
    h2o_timeout_init(r->opts.loop, &r->cmd_timeout, r->opts.command_timeout_ms);
    h2o_timeout_init(r->opts.loop, &r->connect_timeout, r->opts.connect_timeout_ms);
    h2o_timeout_init(r->opts.loop, &r->tick, TICK_MS);
    r->connect_entry.cb = on_connect_timeout;
    r->tick_entry.cb = on_tick;
    start_connect(r);
    return r;
}

void ag_redis_destroy(ag_redis_t *r)
{
    if (r == NULL)
        return;
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = ST_DOWN;
    r->fail_reason = "redis closed";
    if (ac != NULL)
        redisAsyncFree(ac);
    if (h2o_timeout_is_linked(&r->connect_entry))
        h2o_timeout_unlink(&r->connect_entry);
    if (h2o_timeout_is_linked(&r->tick_entry))
        h2o_timeout_unlink(&r->tick_entry);
    flush_waiters(r);
    h2o_timeout_dispose(r->opts.loop, &r->cmd_timeout);
    h2o_timeout_dispose(r->opts.loop, &r->connect_timeout);
    h2o_timeout_dispose(r->opts.loop, &r->tick);
    ag_map_dispose(&r->wanted);
    ag_map_dispose(&r->active);
    free(r);
}

int ag_redis_is_up(const ag_redis_t *r)
{
    return r->state == ST_UP;
}

const ag_store_stats_t *ag_redis_stats(const ag_redis_t *r)
{
    return &r->stats;
}

static void count_reply(ag_redis_t *r, const pending_t *p, int failed)
{
    static const double bounds[] = AG_STORE_LATENCY_BOUNDS;
    if (failed) {
        r->stats.errors++;
        return;
    }
    double secs = (double)(ag_mono_ns() - p->sent_ns) / 1e9;
    size_t i = 0;
    while (i < AG_STORE_LATENCY_BUCKETS && secs > bounds[i])
        i++;
    if (i < AG_STORE_LATENCY_BUCKETS)
        r->stats.buckets[i]++;
    r->stats.answered++;
    r->stats.seconds += secs;
}

/* --- commands --- */

static void on_reply(redisAsyncContext *ac, void *_reply, void *_p)
{
    (void)ac;
    pending_t *p = _p;
    redisReply *reply = _reply;
    if (h2o_timeout_is_linked(&p->timer))
        h2o_timeout_unlink(&p->timer);
    const char *err = NULL;
    if (reply == NULL)
        err = p->r->fail_reason != NULL ? p->r->fail_reason : "redis connection lost";
    else if (reply->type == REDIS_REPLY_ERROR)
        err = reply->str;
    count_reply(p->r, p, reply == NULL || reply->type == REDIS_REPLY_ERROR);
    if (p->cb != NULL)
        p->cb(p->data, err, reply);
    free(p);
}

static void on_cmd_timeout(h2o_timeout_entry_t *entry)
{
    pending_t *p = H2O_STRUCT_FROM_MEMBER(pending_t, timer, entry);
    /* replies come in order: the oldest command is stuck, so is the connection */
    lose(p->r, "redis timeout", 1);
}

void ag_redis_command(ag_redis_t *r, ag_redis_reply_cb cb, void *data, int argc, const char **argv, const size_t *argvlen)
{
    pending_t *p;
    /* while connecting, hiredis keeps the command until the socket is writable; while down, fail at once */
    if (r->state == ST_DOWN || r->ac == NULL || (p = calloc(1, sizeof(*p))) == NULL) {
        r->stats.commands++;
        r->stats.errors++;
        if (cb != NULL)
            cb(data, "redis unavailable", NULL);
        return;
    }
    p->r = r;
    p->cb = cb;
    p->data = data;
    p->timer.cb = on_cmd_timeout;
    p->sent_ns = ag_mono_ns();
    r->stats.commands++;
    if (redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) {
        r->stats.errors++;
        free(p);
        if (cb != NULL)
            cb(data, "redis unavailable", NULL);
        return;
    }
    h2o_timeout_link(r->opts.loop, &r->cmd_timeout, &p->timer);
}

void ag_redis_commandv(ag_redis_t *r, ag_redis_reply_cb cb, void *data, ...)
{
    const char *argv[32];
    size_t lens[32];
    int argc = 0;
    va_list ap;
    va_start(ap, data);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 32) {
        argv[argc] = a;
        lens[argc] = strlen(a);
        argc++;
    }
    va_end(ap);
    ag_redis_command(r, cb, data, argc, argv, lens);
}

/* --- pub/sub --- */

static void on_sub_reply(redisAsyncContext *ac, void *_reply, void *_r)
{
    ag_redis_t *r = _r;
    redisReply *reply = _reply;
    if (reply == NULL || ac != r->ac || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *type = reply->element[0]->str;
    if (strcmp(type, "message") == 0) {
        /* a channel left the wanted set while its UNSUBSCRIBE is in flight: drop */
        if (reply->element[2]->type == REDIS_REPLY_STRING && ag_map_get(&r->wanted, reply->element[1]->str) != NULL)
            r->opts.on_message(r->opts.data, reply->element[1]->str, reply->element[1]->len, reply->element[2]->str,
                               reply->element[2]->len);
        return;
    }
    if (strcmp(type, "subscribe") == 0) {
        if (ag_map_get(&r->active, reply->element[1]->str) != NULL)
            ag_map_set(&r->active, reply->element[1]->str, (void *)2);
    } else if (strcmp(type, "unsubscribe") != 0) {
        return;
    }
    if (r->sub_inflight > 0 && --r->sub_inflight == 0)
        reconcile(r);
}

/* Makes Redis' subscriptions match the wanted set, one batch in flight at a time: hiredis 0.14 keeps one callback per
 * channel, and a SUBSCRIBE crossing an UNSUBSCRIBE of the same channel would lose it. */
static void reconcile(ag_redis_t *r)
{
    if (r->state != ST_UP || r->sub_inflight != 0 || r->ac == NULL)
        return;
    const char *argv[SUB_BATCH + 1];
    size_t lens[SUB_BATCH + 1];
    char *copies[SUB_BATCH];
    int n = 0;
    const char *k;
    void *v;
    for (size_t it = 0; n < SUB_BATCH && ag_map_next(&r->wanted, &it, &k, &v);)
        if (ag_map_get(&r->active, k) == NULL) {
            argv[1 + n] = k;
            lens[1 + n] = strlen(k);
            n++;
        }
    if (n > 0) {
        argv[0] = "SUBSCRIBE";
        lens[0] = 9;
        if (redisAsyncCommandArgv(r->ac, on_sub_reply, r, n + 1, argv, lens) != REDIS_OK)
            return;
        for (int i = 0; i < n; i++)
            ag_map_set(&r->active, argv[1 + i], (void *)1);
        r->sub_inflight = n;
        return;
    }
    for (size_t it = 0; n < SUB_BATCH && ag_map_next(&r->active, &it, &k, &v);)
        if (ag_map_get(&r->wanted, k) == NULL) {
            copies[n] = strdup(k);
            if (copies[n] == NULL)
                break;
            argv[1 + n] = copies[n];
            lens[1 + n] = strlen(k);
            n++;
        }
    if (n > 0) {
        argv[0] = "UNSUBSCRIBE";
        lens[0] = 11;
        if (redisAsyncCommandArgv(r->ac, on_sub_reply, r, n + 1, argv, lens) == REDIS_OK) {
            for (int i = 0; i < n; i++)
                ag_map_del(&r->active, copies[i]);
            r->sub_inflight = n;
        }
        for (int i = 0; i < n; i++)
            free(copies[i]);
        return;
    }
    if (settled(r))
        flush_waiters(r);
}

int ag_redis_subscribe(ag_redis_t *r, const char *channel)
{
    if (ag_map_get(&r->wanted, channel) != NULL)
        return 0;
    if (ag_map_set(&r->wanted, channel, (void *)1) != 0)
        return AG_ENOMEM;
    reconcile(r);
    return 0;
}

void ag_redis_unsubscribe(ag_redis_t *r, const char *channel)
{
    if (ag_map_del(&r->wanted, channel) != NULL)
        reconcile(r);
}

const ag_redis_url_t *ag__redis_url(const ag_redis_t *r)
{
    return &r->opts.url;
}

void ag_redis_when_subscribed(ag_redis_t *r, void (*cb)(void *data), void *data)
{
    waiter_t *w;
    if (r->state != ST_UP || settled(r) || (w = malloc(sizeof(*w))) == NULL) {
        cb(data);
        return;
    }
    w->cb = cb;
    w->data = data;
    w->next = NULL;
    *r->waiters_tail = w;
    r->waiters_tail = &w->next;
}
