/*
 * The public node API (include/actiongate.h; server_internal.h): the configuration loaded with the options over it,
 * one node or a process's workers built and bound, and the calls that are the server object's.
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include "server_internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "actiongate.h"
#include "modules.h"
#include "token.h"

static int replace(char **field, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return AG_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

/* The options over the file's values (defaults < file < options). */
static int apply_options(ag_config_t *cfg, const ag_options_t *o, char *errbuf, size_t errlen)
{
    if (o->port < AG_PORT_ANY || o->port > 65535) {
        snprintf(errbuf, errlen, "port: not a port number: %d", o->port);
        return AG_ECONFIG;
    }
    if (o->port != 0)
        cfg->servers.web.port = o->port == AG_PORT_ANY ? 0 : o->port;
    if ((o->host != NULL && replace(&cfg->servers.web.bindIP, o->host) != 0) ||
        (o->public_dir != NULL && replace(&cfg->servers.web.publicDir, o->public_dir) != 0) ||
        (o->log_level != NULL && replace(&cfg->general.logLevel, o->log_level) != 0) ||
        (o->redis_url != NULL && replace(&cfg->redis.url, o->redis_url) != 0)) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    int lvl = ag_log_level_parse(cfg->general.logLevel);
    if (lvl < 0) {
        snprintf(errbuf, errlen, "log level: one of debug, info, warn, error, none (not %.40s)", cfg->general.logLevel);
        return AG_ECONFIG;
    }
    ag_log_threshold = (ag_log_level_t)lvl;
    return 0;
}

/* The token keys are files the configuration names: a missing or unusable one is a configuration error too. */
static int check_token_keys(const ag_config_t *cfg, const char *name, char *errbuf, size_t errlen)
{
    if (!ag_token_configured(cfg))
        return 0;
    char err[512];
    ag_token_verifier_t *v = ag_token_verifier_create(cfg, err, sizeof(err));
    if (v == NULL) {
        snprintf(errbuf, errlen, "%s:1: %s", name != NULL ? name : "(built-in defaults)", err);
        return AG_ECONFIG;
    }
    ag_token_verifier_destroy(v);
    return 0;
}

/* The configuration with the options over it, validated; NULL with one line in errbuf and the code in *ret. */
static ag_config_t *load_config(const ag_options_t *o, int *ret, char *errbuf, size_t errlen)
{
    ag_config_t *cfg = o->config_path != NULL ? ag_config_load(o->config_path, errbuf, errlen) : ag_config_create_default();
    if (cfg == NULL) {
        if (o->config_path == NULL)
            snprintf(errbuf, errlen, "out of memory");
        *ret = o->config_path == NULL ? AG_ENOMEM : AG_ECONFIG;
        return NULL;
    }
    *ret = apply_options(cfg, o, errbuf, errlen);
    if (*ret == 0)
        *ret = check_token_keys(cfg, o->config_path, errbuf, errlen);
    if (*ret != 0) {
        ag_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

/* A node, with its modules loaded and its listener bound; NULL with one line in errbuf and the code in *ret. */
static ag_server_t *build_node(ag_config_t *cfg, ag_workers_t *w, unsigned index, const char *base_id, int *ret, char *errbuf,
                               size_t errlen)
{
    ag_server_t *s = ag__server_create(cfg, w, index, base_id, errbuf, errlen);
    if (s == NULL) {
        *ret = AG_EIO;
        return NULL;
    }
    if (w != NULL)
        w->nodes[index] = s; /* from here on worker 0 destroys it */
    /* before binding: a node whose modules fail never takes a connection */
    if ((*ret = ag_modules_load(s, errbuf, errlen)) == 0 && ag_server_listen(s, errbuf, errlen) != 0)
        *ret = AG_EIO;
    if (*ret == 0)
        return s;
    if (w == NULL)
        ag_server_destroy(s);
    return NULL;
}

/* How many workers: the options', else general.workers; 0 = the cores this process may run on (its CPU affinity:
 * `taskset -c 0` or a container's cpuset means one), else the online cores. */
static size_t workers_wanted(const ag_options_t *o, const ag_config_t *cfg)
{
    long n = o->workers == AG_WORKERS_CONFIG ? cfg->general.workers : o->workers == AG_WORKERS_CORES ? 0 : o->workers;
    cpu_set_t set;
    if (n == 0 && sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > AG_CONFIG_WORKERS_MAX ? AG_CONFIG_WORKERS_MAX : (size_t)n;
}

int ag_create_ex(const ag_options_t *opts, ag_server_t **out, char *errbuf, size_t errlen)
{
    static const ag_options_t none;
    const ag_options_t *o = opts != NULL ? opts : &none;
    *out = NULL;
    if (o->workers < AG_WORKERS_CORES || o->workers > AG_CONFIG_WORKERS_MAX) {
        snprintf(errbuf, errlen, "workers: between 0 (the cores this process may run on) and %d", AG_CONFIG_WORKERS_MAX);
        return AG_ECONFIG;
    }
    int ret;
    ag_config_t *cfg = load_config(o, &ret, errbuf, errlen);
    if (cfg == NULL)
        return ret;
    size_t n = o->workers == 0 ? 1 : workers_wanted(o, cfg);
    if (n == 1) {
        ag_server_t *s = build_node(cfg, NULL, 0, NULL, &ret, errbuf, errlen);
        if (s == NULL)
            return ret;
        *out = s;
        return 0;
    }
    ag_workers_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->shared = ag_store_shared_create()) == NULL) {
        free(w);
        ag_config_destroy(cfg);
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    w->n = n;
    pthread_mutex_init(&w->lock, NULL);
    char base[64];
    if (cfg->general.id[0] != '\0') {
        snprintf(base, sizeof(base), "%s", cfg->general.id);
    } else {
        unsigned char b[6];
        ag_random_bytes(b, sizeof(b));
        snprintf(base, sizeof(base), "n%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    }
    /* each worker owns a configuration of its own (nothing of a node is shared between threads) */
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (cfg = load_config(o, &ret, errbuf, errlen)) == NULL)
            break;
        if (build_node(cfg, w, (unsigned)i, base, &ret, errbuf, errlen) == NULL)
            break;
        ret = 0;
    }
    if (ret != 0) {
        if (w->nodes[0] != NULL) {
            ag_server_destroy(w->nodes[0]); /* the other workers and w with it */
        } else {
            ag_store_shared_release(w->shared);
            pthread_mutex_destroy(&w->lock);
            free(w);
        }
        return ret;
    }
    *out = w->nodes[0];
    return 0;
}

ag_server_t *ag_create(const char *config_path, char *errbuf, size_t errlen)
{
    ag_options_t o = {.config_path = config_path};
    ag_server_t *s;
    return ag_create_ex(&o, &s, errbuf, errlen) == 0 ? s : NULL;
}

int ag_check_config(const char *config_path, char *errbuf, size_t errlen)
{
    ag_config_t *cfg = ag_config_load(config_path, errbuf, errlen);
    if (cfg == NULL)
        return AG_ECONFIG;
    int ret = check_token_keys(cfg, config_path, errbuf, errlen);
    ag_config_destroy(cfg);
    return ret;
}

const char *ag_version(void)
{
    return AG_VERSION;
}

int ag_port(ag_server_t *s)
{
    return ag_server_port(s);
}

const char *ag_node_id(ag_server_t *s)
{
    return s->node_id;
}

int ag_run(ag_server_t *s)
{
    return ag_server_run(s);
}

void ag_stop(ag_server_t *s)
{
    ag_server_stop(s);
}

void ag_destroy(ag_server_t *s)
{
    ag_server_destroy(s);
}
