/*
 * The node's batch of socket writes (general.ioUring, as for WebSockets in transports/ws.c), shared by the sockets
 * engine.io writes itself: HTTP/1.x SSE streams (eio_sse.c) and direct polling answers (eio_polling_direct.c). A room
 * fan-out gives hundreds of them bytes in one loop iteration; those h2o would write at once go out in io_uring submits
 * of BATCH_MAX instead of one writev each. One list, one ring and one zero timeout per node (per worker).
 */
#include "eio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 256

static void count(ag_stats_t *st, ag__eio_batch_kind_t kind, int whole)
{
    if (kind == AG__EIO_BATCH_SSE)
        (*(whole ? &st->sse_batch_whole : &st->sse_batch_rest))++;
    else
        (*(whole ? &st->poll_batch_whole : &st->poll_batch_rest))++;
}

/* Sends the picked sockets' bytes in one submit and takes off each what its socket took, as if an h2o write had
 * completed; a rest stays for the writer to give to h2o, which meets the full socket or the error as it would have.
 * No callback runs here, so nothing of the batch can go away before every result is in. */
static void batch_send(ag__eio_node_t *n, size_t cnt)
{
    ag_stats_t *st = &n->server->stats;
    ag__eio_batched_t **picked = n->picked;
    size_t queued = 0;
    int kinds = 0;
    while (queued < cnt && ag_batch_send_add(n->ring, h2o_socket_get_fd(picked[queued]->sock), picked[queued]->buf->base,
                                             picked[queued]->buf->len) >= 0)
        kinds |= 1 << picked[queued++]->kind;
    ag_batch_send_submit(n->ring, n->results);
    if (kinds & (1 << AG__EIO_BATCH_SSE))
        st->sse_batch_submits++;
    if (kinds & (1 << AG__EIO_BATCH_POLL))
        st->poll_batch_submits++;
    for (size_t i = 0; i < cnt; i++) {
        ag__eio_batched_t *e = picked[i];
        ssize_t sent = i < queued ? n->results[i] : -EAGAIN; /* (not taken by the ring: written as before) */
        if (sent <= 0) {
            count(st, e->kind, 0);
            continue;
        }
        e->sock->bytes_written += (size_t)sent;
        if (e->sent != NULL)
            e->sent(e, (size_t)sent);
        if ((size_t)sent < e->buf->len) {
            count(st, e->kind, 0);
            memmove(e->buf->base, e->buf->base + sent, e->buf->len - (size_t)sent);
            e->buf->len -= (size_t)sent;
            continue;
        }
        count(st, e->kind, 1);
        e->buf->len = 0;
    }
}

static int batch_ring(ag__eio_node_t *n)
{
    if (n->ring != NULL)
        return 1;
    /* made on the loop's own thread: the ring is tied to the thread that submits */
    n->picked = malloc(BATCH_MAX * sizeof(*n->picked));
    n->results = malloc(BATCH_MAX * sizeof(*n->results));
    if (n->picked != NULL && n->results != NULL && (n->ring = ag_batch_send_create(BATCH_MAX)) != NULL) {
        n->server->stats.sse_io_uring = 1;
        n->server->stats.poll_io_uring = 1;
        return 1;
    }
    ag_log(AG_LOG_INFO, "eio", NULL, "io_uring is not available (%s): each SSE or direct polling write is its own",
           n->picked == NULL || n->results == NULL ? "out of memory" : strerror(errno));
    free(n->picked);
    free(n->results);
    n->picked = NULL;
    n->results = NULL;
    n->batching = -1;
    return 0;
}

/* The node's zero timeout: every socket given bytes in this loop iteration. Those h2o would write at once are sent in
 * submits of BATCH_MAX; then each writer goes on (after()). A lone socket is not worth a submit. */
static void on_batch(h2o_timeout_entry_t *entry)
{
    ag__eio_node_t *n = H2O_STRUCT_FROM_MEMBER(ag__eio_node_t, batch_entry, entry);
    h2o_linklist_t todo;
    h2o_linklist_init_anchor(&todo);
    h2o_linklist_insert_list(&todo, &n->batch);
    if (todo.next->next != &todo && batch_ring(n)) {
        size_t cnt = 0;
        for (h2o_linklist_t *l = todo.next; l != &todo; l = l->next) {
            ag__eio_batched_t *e = H2O_STRUCT_FROM_MEMBER(ag__eio_batched_t, link, l);
            if (!e->batchable(e))
                continue;
            n->picked[cnt++] = e;
            if (cnt == BATCH_MAX) {
                batch_send(n, cnt);
                cnt = 0;
            }
        }
        if (cnt > 1)
            batch_send(n, cnt);
    }
    /* one writer's session may end others (a close's hooks): each leaves this list as it goes */
    while (!h2o_linklist_is_empty(&todo)) {
        ag__eio_batched_t *e = H2O_STRUCT_FROM_MEMBER(ag__eio_batched_t, link, todo.next);
        h2o_linklist_unlink(&e->link);
        e->after(e);
    }
}

int ag__eio_batching(ag__eio_node_t *n)
{
    return n != NULL && n->batching > 0;
}

void ag__eio_batch_add(ag__eio_node_t *n, ag__eio_batched_t *e)
{
    if (h2o_linklist_is_linked(&e->link))
        return;
    h2o_linklist_insert(&n->batch, &e->link);
    if (!h2o_timeout_is_linked(&n->batch_entry))
        h2o_timeout_link(n->server->loop, &n->server->ctx.zero_timeout, &n->batch_entry);
}

void ag__eio_batch_remove(ag__eio_batched_t *e)
{
    if (h2o_linklist_is_linked(&e->link))
        h2o_linklist_unlink(&e->link);
}

void ag__eio_batch_node_init(ag__eio_node_t *n)
{
    n->batching = strcmp(n->server->config->general.ioUring, "off") != 0 ? 1 : -1;
    h2o_linklist_init_anchor(&n->batch);
    n->batch_entry.cb = on_batch;
}

void ag__eio_batch_node_dispose(ag__eio_node_t *n)
{
    n->batching = -1;
    while (!h2o_linklist_is_empty(&n->batch)) {
        ag__eio_batched_t *e = H2O_STRUCT_FROM_MEMBER(ag__eio_batched_t, link, n->batch.next);
        h2o_linklist_unlink(&e->link);
        e->after(e);
    }
    if (h2o_timeout_is_linked(&n->batch_entry))
        h2o_timeout_unlink(&n->batch_entry);
    ag_batch_send_destroy(n->ring);
    free(n->picked);
    free(n->results);
    n->ring = NULL;
    n->picked = NULL;
    n->results = NULL;
    n->server->stats.sse_io_uring = 0;
    n->server->stats.poll_io_uring = 0;
}
