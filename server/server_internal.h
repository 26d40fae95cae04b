/*
 * What the files of the server object share, and nothing outside them includes: server.c (building a node, running,
 * stopping, destroying), server_accept.c (listening and accepting), server_workers.c (waking the workers, gathering a
 * text from every one) and server_public.c (the public node API). server.h is the module's interface.
 */
#ifndef AG_SERVER_INTERNAL_H
#define AG_SERVER_INTERNAL_H

#include "server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* The workers of one process (general.workers > 1): each a node on its own thread and loop. Worker 0 is the node the
 * public API hands out; it owns this, runs on the caller's thread, reads the signals and tells the others. */
typedef struct st_ag__gather_t ag__gather_t;
/* A gather waiting for one worker's answer (in that worker's asks list). */
typedef struct st_ag__ask_t {
    struct st_ag__ask_t *next;
    ag__gather_t *g;
} ag__ask_t;

/* A connection one worker accepted for another (server_accept.c): its descriptor and peer address. */
typedef struct st_ag__handed_t {
    struct st_ag__handed_t *next;
    int fd;
    socklen_t sslen;
    struct sockaddr_storage ss;
} ag__handed_t;

typedef struct st_ag_workers_t {
    size_t n;
    pthread_mutex_t lock;                        /* the asks, done and handed lists, and every gather's counts */
    ag__ask_t *asks[AG_CONFIG_WORKERS_MAX];      /* what worker i is asked to render */
    ag__gather_t *done[AG_CONFIG_WORKERS_MAX];   /* worker i's gathers that every worker answered */
    ag__handed_t *handed[AG_CONFIG_WORKERS_MAX]; /* connections accepted for worker i, newest first */
    size_t num_handed[AG_CONFIG_WORKERS_MAX];
    atomic_int taking[AG_CONFIG_WORKERS_MAX]; /* 1 while worker i's loop reads the public listener */
    atomic_uint next_accept;                  /* the public listener's connections go round the workers */
    ag_server_t *nodes[AG_CONFIG_WORKERS_MAX];
    pthread_t threads[AG_CONFIG_WORKERS_MAX];
    int exit_codes[AG_CONFIG_WORKERS_MAX];
    size_t started; /* threads started by ag_server_run */
    ag_store_shared_t *shared;
    atomic_int stop;    /* 1: every worker stops */
    atomic_uint reopen; /* bumped at each SIGHUP: every worker reopens its access log */
} ag_workers_t;

/* server.c: a node, or worker `index` of a process's workers (w non-NULL); NULL with one line in errbuf. */
ag_server_t *ag__server_create(ag_config_t *cfg, ag_workers_t *w, unsigned index, const char *base_id, char *errbuf, size_t errlen);
/* server_accept.c: the listeners' read callback, and the timer that reads them again after a pause. */
void ag__server_on_accept(h2o_socket_t *listener, const char *err);
void ag__server_on_accept_resume(h2o_timeout_entry_t *entry);
/* server_accept.c: whether s's loop reads the public listener now (other workers hand it connections only then); the
 * connections other workers accepted for s, taken on s's loop (when woken); those left when the loops have ended. */
void ag__server_taking(ag_server_t *s, int on);
void ag__server_take_handed(ag_server_t *s);
void ag__server_handed_drop(ag_workers_t *w);
/* server_workers.c: the other workers are woken (they read the process's flags and what they are asked); the read
 * callback of a worker's eventfd; what was still asked or answered when the loops have ended. */
void ag__server_wake_others(ag_server_t *s);
void ag__server_wake(ag_workers_t *w, size_t i);
void ag__server_on_wake(h2o_socket_t *sock, const char *err);
void ag__server_gathers_drop(ag_workers_t *w);

#endif
