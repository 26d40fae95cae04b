/*
 * A process's workers talking to each other (server_internal.h): each has an eventfd the others write to, and reads the
 * process's flags (stop, reopen the logs) and what it is asked to render when woken; a gather collects one text from
 * every worker (the process's /metrics).
 */
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ops.h"

/* Writes to worker i's eventfd: it reads the process's flags on its next pass. */
void ag__server_wake(ag_workers_t *w, size_t i)
{
    uint64_t one = 1;
    if (w->nodes[i] != NULL && w->nodes[i]->wake != NULL && write(h2o_socket_get_fd(w->nodes[i]->wake), &one, sizeof(one)) < 0)
        ag_log(AG_LOG_ERROR, "server", NULL, "cannot wake worker %zu: %s", i, strerror(errno));
}

void ag__server_wake_others(ag_server_t *s)
{
    for (size_t i = 0; i < s->workers->n; i++)
        if (i != s->worker)
            ag__server_wake(s->workers, i);
}

/* --- gathering a text from every worker (the process's /metrics) --- */

struct st_ag__gather_t {
    ag_server_t *from;
    ag_server_render_fn render;
    ag_server_gathered_fn cb;
    void *data;
    h2o_timeout_entry_t timer; /* on from's loop: the wait's end */
    ag__gather_t *next_done;
    /* under the workers' lock */
    size_t pending;
    int abandoned; /* from answered without the missing workers: the last one to answer frees it */
    char *texts[AG_CONFIG_WORKERS_MAX];
    size_t lens[AG_CONFIG_WORKERS_MAX];
};

static void gather_free(ag__gather_t *g)
{
    for (size_t i = 0; i < AG_CONFIG_WORKERS_MAX; i++)
        free(g->texts[i]);
    free(g);
}

/* On from's loop: answered by everyone (from the done list) or out of time (from the timer). */
static void gather_finish(ag__gather_t *g)
{
    ag_workers_t *w = g->from->workers;
    if (h2o_timeout_is_linked(&g->timer))
        h2o_timeout_unlink(&g->timer);
    pthread_mutex_lock(&w->lock);
    int last = g->pending == 0;
    g->abandoned = 1;
    /* a worker that answers later finds it abandoned and frees it; the texts read below are complete until then */
    char *texts[AG_CONFIG_WORKERS_MAX];
    size_t lens[AG_CONFIG_WORKERS_MAX];
    for (size_t i = 0; i < w->n; i++) {
        texts[i] = g->texts[i];
        lens[i] = g->lens[i];
        g->texts[i] = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    g->cb(g->data, texts, lens, w->n);
    for (size_t i = 0; i < w->n; i++)
        free(texts[i]);
    if (last)
        gather_free(g);
}

static void on_gather_timeout(h2o_timeout_entry_t *entry)
{
    gather_finish(H2O_STRUCT_FROM_MEMBER(ag__gather_t, timer, entry));
}

int ag_server_gather(ag_server_t *s, ag_server_render_fn render, ag_server_gathered_fn done, void *data)
{
    ag_workers_t *w = s->workers;
    if (w == NULL || w->n < 2)
        return AG_ENOENT;
    ag__gather_t *g = calloc(1, sizeof(*g));
    ag__ask_t *asks[AG_CONFIG_WORKERS_MAX] = {NULL};
    int oom = g == NULL;
    for (size_t i = 0; !oom && i < w->n; i++)
        if (i != s->worker && (asks[i] = calloc(1, sizeof(*asks[i]))) == NULL)
            oom = 1;
    if (oom) {
        for (size_t i = 0; i < w->n; i++)
            free(asks[i]);
        free(g);
        return AG_ENOMEM;
    }
    g->from = s;
    g->render = render;
    g->cb = done;
    g->data = data;
    g->timer.cb = on_gather_timeout;
    g->pending = w->n - 1;
    h2o_timeout_link(s->loop, &s->ctx.one_sec_timeout, &g->timer);
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n; i++) {
        if (asks[i] != NULL) {
            asks[i]->g = g;
            asks[i]->next = w->asks[i];
            w->asks[i] = asks[i];
        }
    }
    pthread_mutex_unlock(&w->lock);
    ag__server_wake_others(s);
    return 0;
}

/* The loops have ended: what was still asked or answered goes (its requests went with their loops). */
void ag__server_gathers_drop(ag_workers_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        while (w->asks[i] != NULL) {
            ag__ask_t *a = w->asks[i];
            w->asks[i] = a->next;
            ag__gather_t *g = a->g;
            free(a);
            if (--g->pending != 0)
                continue;
            if (!g->abandoned && h2o_timeout_is_linked(&g->timer))
                h2o_timeout_unlink(&g->timer);
            gather_free(g);
        }
    }
    for (size_t i = 0; i < w->n; i++) {
        while (w->done[i] != NULL) {
            ag__gather_t *g = w->done[i];
            w->done[i] = g->next_done;
            if (h2o_timeout_is_linked(&g->timer))
                h2o_timeout_unlink(&g->timer);
            gather_free(g);
        }
    }
}

/* On s's loop: renders what the others asked, and finishes its own gathers that everyone answered. */
static void gather_serve(ag_server_t *s)
{
    ag_workers_t *w = s->workers;
    pthread_mutex_lock(&w->lock);
    ag__ask_t *asks = w->asks[s->worker];
    ag__gather_t *done = w->done[s->worker];
    w->asks[s->worker] = NULL;
    w->done[s->worker] = NULL;
    pthread_mutex_unlock(&w->lock);
    while (asks != NULL) {
        ag__ask_t *a = asks;
        asks = a->next;
        size_t len = 0;
        char *text = a->g->render(s, &len);
        ag__gather_t *g = a->g, *free_it = NULL;
        int wake_from = 0;
        size_t from = 0;
        pthread_mutex_lock(&w->lock);
        g->texts[s->worker] = text;
        g->lens[s->worker] = len;
        if (--g->pending == 0) {
            if (g->abandoned) {
                free_it = g;
            } else {
                /* from's loop may finish and free g as soon as the lock is let go: nothing of g is read after */
                from = g->from->worker;
                g->next_done = w->done[from];
                w->done[from] = g;
                wake_from = 1;
            }
        }
        pthread_mutex_unlock(&w->lock);
        if (wake_from)
            ag__server_wake(w, from);
        if (free_it != NULL)
            gather_free(free_it);
        free(a);
    }
    while (done != NULL) {
        ag__gather_t *g = done;
        done = g->next_done;
        gather_finish(g);
    }
}

/* Another worker asked: the process stops, or its logs are reopened (SIGHUP), or texts are gathered, or it accepted
 * connections for this one. */
void ag__server_on_wake(h2o_socket_t *sock, const char *err)
{
    ag_server_t *s = sock->data;
    if (err != NULL)
        return;
    /* h2o does not read this socket (H2O_SOCKET_FLAG_DONT_READ): the count is read here, which resets it, or the
     * eventfd would stay readable and the loop would come back here at once, forever */
    uint64_t count;
    if (read(h2o_socket_get_fd(sock), &count, sizeof(count)) < 0 && errno != EAGAIN)
        ag_log_limited(AG_LOG_ERROR, "server", NULL, "worker %u: reading its eventfd: %s", s->worker, strerror(errno));
    gather_serve(s);
    ag__server_take_handed(s);
    unsigned reopen = atomic_load(&s->workers->reopen);
    if (reopen != s->reopen_seen) {
        s->reopen_seen = reopen;
        ag_ops_reopen(s);
    }
    if (atomic_load(&s->workers->stop))
        ag_server_stop(s);
}
