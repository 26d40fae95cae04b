/*
 * Operations, the service side (ops_internal.h): the access log (a line per request, tokens in URLs redacted, the file
 * opened again on SIGHUP), systemd notification, and the drain that tells connections to go over a window on shutdown.
 */
#define _GNU_SOURCE
#include "ops_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "conn.h"
#include "http.h"
#include "resume_state.h"

/* --- access log --- */

/* A token in a URL is a credential: its query parameter's value is written as "redacted" (in place, NUL-terminated). */
static void redact_param(char *path, const char *name)
{
    size_t nlen = strlen(name);
    for (char *p = strchr(path, '?'); p != NULL; p = strchr(p, '&')) {
        p++;
        if (strncmp(p, name, nlen) != 0 || p[nlen] != '=')
            continue;
        char *v = p + nlen + 1;
        size_t vlen = strcspn(v, "&");
        if (vlen >= 8) {
            memcpy(v, "redacted", 8);
            memmove(v + 8, v + vlen, strlen(v + vlen) + 1);
        } else {
            memset(v, '*', vlen);
        }
    }
}

void ag_ops_access_write(ag_server_t *s, const ag_ops_access_t *a)
{
    char path[1024], method[32], ua[512], ts[32];
    char raw[sizeof(path)];
    snprintf(raw, sizeof(raw), "%.*s", (int)(a->path_len < sizeof(raw) - 1 ? a->path_len : sizeof(raw) - 1), a->path);
    if (s->config->tokens.secret[0] != '\0' || s->config->tokens.publicKeyFile[0] != '\0')
        redact_param(raw, s->config->tokens.queryParam);
    int json = strcmp(s->config->general.logFormat, "json") == 0;
    ag_log_escape(path, sizeof(path), raw, json);
    snprintf(raw, sizeof(raw), "%.*s", (int)(a->method_len < 31 ? a->method_len : 31), a->method);
    ag_log_escape(method, sizeof(method), raw, json);
    snprintf(raw, sizeof(raw), "%.*s", a->ua != NULL ? (int)(a->ua_len < 200 ? a->ua_len : 200) : 0, a->ua != NULL ? a->ua : "");
    ag_log_escape(ua, sizeof(ua), raw, json);
    ag_iso8601(ag_now_ms(), ts);
    uint64_t ms = 0;
    struct timeval now;
    gettimeofday(&now, NULL);
    if (a->began.tv_sec != 0)
        ms = (uint64_t)((now.tv_sec - a->began.tv_sec) * 1000 + (now.tv_usec - a->began.tv_usec) / 1000);
    char line[4096];
    if (json)
        snprintf(line, sizeof(line),
                 "{\"ts\":\"%s\",\"type\":\"access\",\"node\":\"%s\",\"remote\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                 "\"status\":%d,\"bytes\":%zu,\"ms\":%llu,\"ua\":\"%s\"}\n",
                 ts, s->node_id, a->ip, method, path, a->status, a->bytes, (unsigned long long)ms, ua);
    else
        snprintf(line, sizeof(line), "%s access %s \"%s %s HTTP/%d.%d\" %d %zu %llums \"%s\"\n", ts, a->ip, method, path,
                 a->version >> 8, a->version & 0xff, a->status, a->bytes, (unsigned long long)ms, ua);
    /* the log's own stream is the process's (every worker writes it, SIGHUP replaces it): written under its lock */
    if (s->ops->access == NULL) {
        ag_log_line(line);
        return;
    }
    fputs(line, s->ops->access);
    fflush(s->ops->access);
}

static void on_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    ag_server_t *s = ag_http_server(req);
    char ip[64];
    int port;
    ag_ops_access_t a = {.method = req->method.base,
                         .method_len = req->method.len,
                         .path = req->path.base,
                         .path_len = req->path.len,
                         .version = req->version,
                         .status = req->res.status,
                         .bytes = req->bytes_sent,
                         .began = req->processed_at.at,
                         .ip = ip};
    a.ua = ag_http_header(req, "user-agent", &a.ua_len);
    ag_http_peer_info(req, ip, &port);
    ag_ops_access_write(s, &a);
}

void ag_ops_access_register(ag_server_t *s)
{
    if (s->config->general.accessLog[0] == '\0')
        return;
    h2o_hostconf_t *host = s->h2o_config.hosts[0];
    for (size_t i = 0; i < host->paths.size; i++)
        h2o_create_logger(&host->paths.entries[i], sizeof(h2o_logger_t))->log_access = on_access;
}

int ag__ops_access_open(ag_server_t *s)
{
    const char *path = s->config->general.accessLog;
    if (path[0] == '\0' || strcmp(path, "-") == 0)
        return 0;
    FILE *f = fopen(path, "ae");
    if (f == NULL)
        return AG_EIO;
    if (s->ops->access != NULL)
        fclose(s->ops->access);
    s->ops->access = f;
    return 0;
}

void ag_ops_reopen(ag_server_t *s)
{
    if (ag_log_reopen() != 0)
        ag_log(AG_LOG_ERROR, "ops", NULL, "SIGHUP: cannot open %s again; still writing to the old file",
               s->config->general.logFile);
    if (ag__ops_access_open(s) != 0)
        ag_log(AG_LOG_ERROR, "ops", NULL, "SIGHUP: cannot open %s again; still writing to the old file",
               s->config->general.accessLog);
    ag_log(AG_LOG_INFO, "ops", NULL, "SIGHUP: log files opened again");
}

/* --- systemd --- */

void ag_ops_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof(sun.sun_path))
        return;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        ag_log(AG_LOG_WARN, "ops", NULL, "cannot notify systemd (%s)", path);
    close(fd);
}

/* --- drain --- */

void ag_ops_drain_start(ag_server_t *s)
{
    ag_ops_t *o = s->ops;
    ag_ops_notify("STOPPING=1");
    o->draining = 1;
    o->drain_from = h2o_now(s->loop) + (uint64_t)s->config->ops.drainDelay;
    o->drain_counted = 0;
    o->drain_told = 0;
    if (s->num_conns != 0)
        ag_log(AG_LOG_INFO, "ops", NULL, "draining %zu connections over %d ms after %d ms", s->num_conns,
               s->config->ops.drainWindow, s->config->ops.drainDelay);
}

int ag_ops_drain_waiting(ag_server_t *s)
{
    return s->ops->draining && h2o_now(s->loop) < s->ops->drain_from;
}

int ag_ops_drain_step(ag_server_t *s)
{
    ag_ops_t *o = s->ops;
    if (!o->draining)
        return 0;
    uint64_t now = h2o_now(s->loop), window = (uint64_t)s->config->ops.drainWindow;
    if (now < o->drain_from)
        return 1;
    if (!o->drain_counted) {
        o->drain_counted = 1;
        o->drain_total = s->num_conns;
    }
    /* uniformly over the window: by time t, t/window of the connections were told */
    size_t due = o->drain_total;
    if (window != 0 && now - o->drain_from < window)
        due = (size_t)((double)o->drain_total * (double)(now - o->drain_from) / (double)window);
    const ag_disconnect_t *why =
        s->config->servers.websocket.destroyClientsOnShutdown ? &AG_DISCONNECT_SHUTDOWN_FINAL : &AG_DISCONNECT_SHUTDOWN;
    const char *id;
    void *v;
    for (size_t it = 0; o->drain_told < due && ag_map_next(&s->conns, &it, &id, &v);) {
        ag_conn_t *c = v;
        if (ag_conn_is_closed(c) || ag_resume_state_keeps(c))
            continue;
        o->drain_told++;
        ag_conn_close(c, why); /* may delete this entry, which the iteration allows */
    }
    if (o->drain_told < due)
        o->drain_told = due; /* connections that went by themselves count as told */
    if (o->drain_told >= o->drain_total) {
        o->draining = 0;
        /* latecomers (an engine.io session still handshaking) go now */
        for (size_t it = 0; ag_map_next(&s->conns, &it, &id, &v);)
            if (!ag_conn_is_closed(v) && !ag_resume_state_keeps(v))
                ag_conn_close(v, why); /* those kept are saved first (server/resume_state.c) */
        return 0;
    }
    return 1;
}
