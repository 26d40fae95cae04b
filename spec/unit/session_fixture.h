/*
 * Test fixture for the session-layer unit tests: a real node built by ag_server_create (every module, no socket: it
 * never listens) and connections carried by a fake transport that keeps every frame queued so the test can read them
 * in order.
 */
#ifndef AG_SESSION_FIXTURE_H
#define AG_SESSION_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "actiongate.h"
#include "server.h"
#include "session.h"

typedef struct {
    ag_conn_t *conn;
    int closed;
    const ag_disconnect_t *why;
} fake_t;

static void fake_pending(ag_conn_t *c, void *self)
{
}

static void fake_close(ag_conn_t *c, void *self, const ag_disconnect_t *why)
{
    fake_t *f = self;
    f->closed = 1;
    f->why = why;
}

/* A resume hands the fake to the connection it resumed */
static void fake_rebind(ag_conn_t *to, void *self)
{
    ((fake_t *)self)->conn = to;
}

static const ag_transport_t fake_transport = {"fake", fake_pending, fake_close, "fake", fake_rebind};

/* A node from yaml (NULL: the built-in defaults). */
static inline ag_server_t *fixture_server(const char *yaml)
{
    char err[512];
    ag_log_threshold = AG_LOG_NONE;
    ag_config_t *cfg = yaml != NULL ? ag_config_load_string(yaml, "fixture.yaml", err, sizeof(err)) : ag_config_create_default();
    if (cfg == NULL)
        fail_msg("%s", err);
    ag_server_t *s = ag_server_create(cfg, err, sizeof(err));
    if (s == NULL)
        fail_msg("%s", err);
    return s;
}

static inline void fixture_server_done(ag_server_t *s)
{
    ag_server_destroy(s);
}

static inline fake_t *fixture_conn(ag_server_t *s, const char *fingerprint)
{
    fake_t *f = calloc(1, sizeof(*f));
    ag_conn_info_t info = {fingerprint, "127.0.0.1", 4242, "websocket", 0, NULL, NULL, NULL, NULL};
    f->conn = ag_conn_create(s, &fake_transport, f, &info);
    assert_non_null(f->conn);
    return f;
}

/* The transport goes away (the peer closed it, or after a close); frees the fake. */
static inline void fixture_drop(fake_t *f)
{
    ag_conn_on_transport_gone(f->conn, &AG_DISCONNECT_PEER_CLOSED);
    free(f);
}

/* The next queued frame, parsed (new reference), or NULL when the queue is empty. */
static inline json_t *fixture_next(fake_t *f)
{
    ag_frame_t *fr = ag_conn_shift(f->conn);
    if (fr == NULL)
        return NULL;
    json_t *j = json_loadb(fr->data, fr->len, JSON_DECODE_ANY, NULL);
    ag_frame_release(fr);
    assert_non_null(j);
    return j;
}

/* The next frame's compact encoding (malloc'ed), or NULL. */
static inline char *fixture_next_text(fake_t *f)
{
    ag_frame_t *fr = ag_conn_shift(f->conn);
    if (fr == NULL)
        return NULL;
    char *s = strndup(fr->data, fr->len);
    ag_frame_release(fr);
    return s;
}

/* One pass of the loop without waiting: what the store published is delivered (the memory store delivers on the next
 * pass, as Redis does). */
static inline void fixture_settle(ag_server_t *s)
{
    h2o_evloop_run(s->loop, 0);
}

static inline void fixture_send(fake_t *f, const char *text)
{
    ag_conn_on_frame(f->conn, text, strlen(text), 0);
    fixture_settle(f->conn->server);
}

/* Sends text and returns the next frame's encoding, which the test then owns. */
static inline char *fixture_ask(fake_t *f, const char *text)
{
    fixture_send(f, text);
    return fixture_next_text(f);
}

static inline void fixture_drain(fake_t *f)
{
    ag_frame_t *fr;
    while ((fr = ag_conn_shift(f->conn)) != NULL)
        ag_frame_release(fr);
}

/* Runs the loop until cond() or about timeout_ms passed. */
static inline void fixture_run_until(ag_server_t *s, int (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t end = ag_now_ms() + (uint64_t)timeout_ms;
    while (!cond(arg) && ag_now_ms() < end)
        h2o_evloop_run(s->loop, 10);
}

static inline void assert_json_text(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

#endif
