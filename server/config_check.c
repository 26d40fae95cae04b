/*
 * Configuration checks made once a file was read over the defaults: values that must agree with each other (bounds,
 * origins and proxy ranges, upstream URLs, token keys), each refused with a message naming the key.
 */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "addr.h"
#include "common.h"

/* The bounds must agree with each other: one inbound message must fit an outbound queue (a say or a reply is about as
 * large as the message that caused it; a connection queues frames of at most half its bound, see ag_conn_max_frame),
 * and a starting room must be creatable. */
static int check_bounds(const ag_config_t *c, const char *name, char *errbuf, size_t errlen)
{
    const long queue = c->servers.websocket.server.queueMaxBytes;
    if (queue < 4096) {
        snprintf(errbuf, errlen, "%s:1: servers.websocket.server.queueMaxBytes must be at least 4096", name);
        return -1;
    }
    const char *in_keys[] = {"maxLength", "maxHttpBufferSize"};
    const long in_values[] = {c->servers.websocket.server.maxLength, c->servers.websocket.server.maxHttpBufferSize};
    for (int i = 0; i < 2; i++) {
        if (in_values[i] > queue / 2) {
            snprintf(errbuf, errlen,
                     "%s:1: servers.websocket.server.%s (%ld) must be at most half of queueMaxBytes (%ld): one inbound message "
                     "must fit an outbound queue",
                     name, in_keys[i], in_values[i], queue);
            return -1;
        }
    }
    if (strcmp(c->general.ioUring, "auto") != 0 && strcmp(c->general.ioUring, "off") != 0) {
        snprintf(errbuf, errlen, "%s:1: general.ioUring must be \"auto\" or \"off\"", name);
        return -1;
    }
    if (strcmp(c->general.logFormat, "text") != 0 && strcmp(c->general.logFormat, "json") != 0) {
        snprintf(errbuf, errlen, "%s:1: general.logFormat must be \"text\" or \"json\"", name);
        return -1;
    }
    const char *paths[] = {c->ops.metricsPath, c->ops.healthPath, c->ops.readyPath};
    for (int i = 0; i < 3; i++) {
        if (paths[i][0] != '\0' && (paths[i][0] != '/' || paths[i][1] == '\0' || strpbrk(paths[i], "?# \t") != NULL)) {
            snprintf(errbuf, errlen, "%s:1: ops paths must be \"\" or an absolute path other than \"/\": \"%.100s\"", name,
                     paths[i]);
            return -1;
        }
    }
    /* a path of its own: sharing one with another endpoint would hand that endpoint's requests to engine.io */
    const char *eio_path = c->servers.engineio.path;
    if (eio_path[0] != '\0' &&
        (eio_path[0] != '/' || eio_path[1] == '\0' || strpbrk(eio_path, "?# \t") != NULL ||
         strcmp(eio_path, c->servers.websocket.server.pathname) == 0 || strcmp(eio_path, c->servers.socketio.path) == 0)) {
        snprintf(errbuf, errlen,
                 "%s:1: servers.engineio.path must be \"\" or an absolute path other than \"/\", the Primus pathname and the "
                 "socket.io path: \"%.100s\"",
                 name, eio_path);
        return -1;
    }
    /* an hour is far beyond any client's connect; the timer list is one per node */
    if (c->servers.socketio.connectTimeout < 1 || c->servers.socketio.connectTimeout > 3600000) {
        snprintf(errbuf, errlen, "%s:1: servers.socketio.connectTimeout must be between 1 and 3600000 ms", name);
        return -1;
    }
    /* the shared store keeps each channel's subscribed workers in one 64-bit word */
    if (c->general.workers < 0 || c->general.workers > AG_CONFIG_WORKERS_MAX) {
        snprintf(errbuf, errlen, "%s:1: general.workers must be between 0 (the cores this process may run on) and %d", name,
                 AG_CONFIG_WORKERS_MAX);
        return -1;
    }
    /* the drain must fit in a stop that someone waits for; a day is far beyond any deploy */
    if (c->ops.drainDelay < 0 || c->ops.drainWindow < 0 || c->ops.drainDelay > 86400000 || c->ops.drainWindow > 86400000) {
        snprintf(errbuf, errlen, "%s:1: ops.drainDelay and ops.drainWindow must be between 0 and 86400000 ms", name);
        return -1;
    }
    const int namemax = c->general.maxRoomNameLength;
    if (c->general.resumeWindow > 0 && (c->general.resumeOutboxFrames < 1 || c->general.resumeHistoryLines < 1)) {
        snprintf(errbuf, errlen, "%s:1: general.resumeOutboxFrames and resumeHistoryLines must be at least 1 with resume on", name);
        return -1;
    }
    if (c->general.maxRoomsPerConnection < 1) {
        snprintf(errbuf, errlen, "%s:1: general.maxRoomsPerConnection must be at least 1", name);
        return -1;
    }
    if (namemax < 1 || namemax > AG_CONFIG_ROOM_NAME_MAX) {
        snprintf(errbuf, errlen, "%s:1: general.maxRoomNameLength must be between 1 and %d", name, AG_CONFIG_ROOM_NAME_MAX);
        return -1;
    }
    size_t nstart = ag_config_list_len(c->general.startingChatRooms);
    if (c->general.maxRooms < 1 || (size_t)c->general.maxRooms < nstart) {
        snprintf(errbuf, errlen, "%s:1: general.maxRooms (%d) must be at least 1 and hold the %zu startingChatRooms", name,
                 c->general.maxRooms, nstart);
        return -1;
    }
    for (size_t i = 0; i < nstart; i++) {
        size_t len = strlen(c->general.startingChatRooms[i]);
        if (len == 0 || len > (size_t)namemax) {
            snprintf(errbuf, errlen,
                     "%s:1: general.startingChatRooms: \"%.40s\" must have 1 to general.maxRoomNameLength (%d) bytes", name,
                     c->general.startingChatRooms[i], namemax);
            return -1;
        }
    }
    return 0;
}

/* An origin as a browser sends it: "null", or scheme://host[:port] with nothing after it (a trailing slash or a path
 * would never match). */
static int is_origin(const char *o)
{
    if (strcmp(o, "*") == 0 || strcmp(o, "null") == 0)
        return 1;
    const char *sep = strstr(o, "://");
    if (sep == NULL || sep == o || sep[3] == '\0')
        return 0;
    for (const char *p = o; p < sep; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
              *p == '.'))
            return 0;
    for (const char *p = sep + 3; *p != '\0'; p++) /* an origin header never carries a path, user or control byte */
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("/?#@\\", *p) != NULL)
            return 0;
    return 1;
}

/* Entries of the address and origin lists; returns a message in buf, or NULL. */
static const char *check_lists(const ag_config_t *c, char *buf, size_t len)
{
    for (char *const *p = c->servers.websocket.server.origins; p != NULL && *p != NULL; p++) {
        if (!is_origin(*p)) {
            snprintf(buf, len,
                     "servers.websocket.server.origins: \"%.200s\" is not an origin (\"*\", \"null\" or scheme://host[:port])", *p);
            return buf;
        }
    }
    for (char *const *p = c->general.trustedProxies; p != NULL && *p != NULL; p++) {
        if (ag_addr_match(*p, NULL) != 1) {
            snprintf(buf, len, "general.trustedProxies: \"%.200s\" is not an IP address or CIDR range", *p);
            return buf;
        }
    }
    return NULL;
}

static const char *check_upstream(const ag_config_t *c, char *buf, size_t len)
{
    ag_url_t u;
    for (char **url = c->upstream.urls; *url != NULL; url++) {
        if (ag_url_parse(*url, &u) != 0) {
            snprintf(buf, len, "upstream.urls: not http://host[:port][/path]: %.80s", *url);
            return buf;
        }
    }
    if (c->upstream.timeout < 1)
        return "upstream.timeout must be at least 1 ms";
    if (c->upstream.maxInFlight < 1)
        return "upstream.maxInFlight must be at least 1";
    if (c->upstream.maxRequestBytes < 1 || c->upstream.maxResponseBytes < 1)
        return "upstream.maxRequestBytes and maxResponseBytes must be at least 1";
    size_t plen = strlen(c->serverApi.prefix);
    if (plen < 2 || plen > 100 || c->serverApi.prefix[0] != '/' || c->serverApi.prefix[plen - 1] == '/')
        return "serverApi.prefix must be a path like /server (no trailing slash)";
    if (c->serverApi.key[0] != '\0' && strlen(c->serverApi.key) < 16)
        return "serverApi.key must be at least 16 characters";
    if (c->serverApi.timeout < 1 || c->serverApi.timeout > 60000)
        return "serverApi.timeout must be from 1 to 60000 (ms)";
    if (c->serverApi.maxFanout < 1)
        return "serverApi.maxFanout must be at least 1";
    if (c->hooks.timeout < 1)
        return "hooks.timeout must be at least 1 ms";
    if (ag_config_list_len(c->modules) > AG_CONFIG_MODULES_MAX)
        return "modules: at most " AG_STR(AG_CONFIG_MODULES_MAX) " shared objects";
    for (size_t i = 0; c->modules[i] != NULL; i++)
        if (c->modules[i][0] == '\0' || strlen(c->modules[i]) >= 4096)
            return "modules: each entry is the path of a shared object (1 to 4095 bytes)";
    const char *named[] = {c->hooks.connect, c->hooks.disconnect, c->hooks.roomAdd, c->hooks.roomLeave, c->hooks.say};
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (named[i][0] == '\0')
            continue;
        if (c->upstream.urls[0] == NULL)
            return "hooks: a hook is answered by the upstream, but upstream.urls is empty";
        if (strspn(named[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:.~") != strlen(named[i]) ||
            strlen(named[i]) > 200) {
            snprintf(buf, len, "hooks: not an action name: %.80s", named[i]);
            return buf;
        }
    }
    return NULL;
}

/* The algorithms tokens.algorithms may name (server/token.c checks each against its key). */
static int is_token_alg(const char *a)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(a, algs[i]) == 0)
            return 1;
    return 0;
}

static const char *check_tokens(const ag_config_t *c, char *buf, size_t len)
{
    const char *secret = c->tokens.secret, *key = c->tokens.publicKeyFile;
    for (char **a = c->tokens.algorithms; *a != NULL; a++) {
        if (strcasecmp(*a, "none") == 0)
            return "tokens.algorithms: \"none\" can never be allowed (anyone could write such a token)";
        if (!is_token_alg(*a)) {
            snprintf(buf, len, "tokens.algorithms: unknown algorithm %.40s (HS256/384/512, RS256/384/512, ES256/384/512)", *a);
            return buf;
        }
        if ((*a)[0] == 'H' && secret[0] == '\0') {
            snprintf(buf, len, "tokens.algorithms: %s needs tokens.secret", *a);
            return buf;
        }
        if ((*a)[0] != 'H' && key[0] == '\0') {
            snprintf(buf, len, "tokens.algorithms: %s needs tokens.publicKeyFile", *a);
            return buf;
        }
    }
    if (secret[0] == '\0' && key[0] == '\0') {
        if (c->tokens.require || c->tokens.algorithms[0] != NULL)
            return "tokens: require and algorithms need tokens.secret or tokens.publicKeyFile";
        return NULL;
    }
    /* an HMAC key shorter than the hash can be guessed from one token, offline (RFC 7518 3.2) */
    if (secret[0] != '\0' && strlen(secret) < 32)
        return "tokens.secret must be at least 32 bytes";
    if (c->tokens.leeway < 0 || c->tokens.leeway > 86400)
        return "tokens.leeway must be between 0 and 86400 seconds";
    if (c->tokens.maxBytes < 64 || c->tokens.maxBytes > 65536)
        return "tokens.maxBytes must be between 64 and 65536";
    size_t qlen = strlen(c->tokens.queryParam);
    if (qlen == 0 || qlen > 64 ||
        strspn(c->tokens.queryParam, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != qlen)
        return "tokens.queryParam must be 1 to 64 letters, digits, '_', '-' or '.'";
    return NULL;
}

int ag__config_check(const ag_config_t *c, const char *name, char *errbuf, size_t errlen)
{
    char bad_url[160];
    const char *problem = NULL;
    char listbuf[320];
    if (c->general.simultaneousActions < 1)
        problem = "general.simultaneousActions must be at least 1";
    else if (c->servers.websocket.server.pathname[0] != '/')
        problem = "servers.websocket.server.pathname must start with /";
    else if (c->servers.web.port > 65535)
        problem = "servers.web.port must be at most 65535";
    else if (ag_log_level_parse(c->general.logLevel) < 0)
        problem = "general.logLevel must be one of debug, info, warn, error, none";
    else if (c->servers.websocket.server.pingInterval < 1 || c->servers.websocket.server.pingTimeout < 1)
        problem = "servers.websocket.server.pingInterval and pingTimeout must be at least 1 ms";
    else if (c->servers.websocket.server.pollSleepMs > 86400000)
        problem = "servers.websocket.server.pollSleepMs must be at most 86400000 ms";
    else if (c->servers.web.secure && (c->servers.web.certFile[0] == '\0' || c->servers.web.keyFile[0] == '\0'))
        problem = "servers.web.secure needs servers.web.certFile and servers.web.keyFile";
    else if (!(c->servers.web.handshakeRate >= 0) || !(c->servers.websocket.server.messageRate >= 0))
        problem = "servers.web.handshakeRate and servers.websocket.server.messageRate must not be negative";
    else if ((c->servers.web.handshakeRate > 0 && c->servers.web.handshakeBurst < 1) ||
             (c->servers.websocket.server.messageRate > 0 && c->servers.websocket.server.messageBurst < 1))
        problem = "servers.web.handshakeBurst and servers.websocket.server.messageBurst must be at least 1 when their rate is set";
    else if (c->servers.websocket.server.credentials && ag_config_list_has(c->servers.websocket.server.origins, "*"))
        /* any page on the web could then act with the visitor's cookies and read the answers */
        problem = "servers.websocket.server.credentials: true needs a list of origins, not \"*\"";
    else if (c->redis.compat[0] != '\0' && strcmp(c->redis.compat, "actionhero") != 0)
        problem = "redis.compat must be \"\" or \"actionhero\"";
    else if (c->redis.compat[0] != '\0' && (c->general.serverToken[0] == '\0' || c->general.channel[0] == '\0'))
        problem = "redis.compat: actionhero needs general.serverToken and general.channel";
    else
        problem = check_lists(c, listbuf, sizeof(listbuf));
    if (problem == NULL)
        problem = check_upstream(c, bad_url, sizeof(bad_url));
    if (problem == NULL)
        problem = check_tokens(c, bad_url, sizeof(bad_url));
    if (problem != NULL) {
        snprintf(errbuf, errlen, "%s:1: %s", name, problem);
        return -1;
    }
    return check_bounds(c, name, errbuf, errlen);
}
