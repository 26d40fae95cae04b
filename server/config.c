/*
 * Configuration: built-in defaults, then a YAML file over them. The schema is one table (key path, type, offset), so
 * a key is declared once; unknown keys and wrong types are errors with the file's line number.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "common.h"
#include "config_internal.h"

typedef enum { T_STR, T_INT, T_LONG, T_BOOL, T_DOUBLE, T_LIST } ctype_t;

typedef struct {
    const char *path;
    ctype_t type;
    size_t off;
} ckey_t;

#define K(path, type, field)                                                                                                       \
    {                                                                                                                              \
        path, type, offsetof(ag_config_t, field)                                                                                   \
    }
static const ckey_t schema[] = {
    K("general.welcomeMessage", T_STR, general.welcomeMessage),
    K("general.serverName", T_STR, general.serverName),
    K("general.apiVersion", T_STR, general.apiVersion),
    K("general.id", T_STR, general.id),
    K("general.serverToken", T_STR, general.serverToken),
    K("general.channel", T_STR, general.channel),
    K("general.simultaneousActions", T_INT, general.simultaneousActions),
    K("general.startingChatRooms", T_LIST, general.startingChatRooms),
    K("general.announceRoomJoins", T_BOOL, general.announceRoomJoins),
    K("general.trustedProxies", T_LIST, general.trustedProxies),
    K("general.logLevel", T_STR, general.logLevel),
    K("general.logFormat", T_STR, general.logFormat),
    K("general.logFile", T_STR, general.logFile),
    K("general.accessLog", T_STR, general.accessLog),
    K("general.shutdownTimeout", T_INT, general.shutdownTimeout),
    K("general.workers", T_INT, general.workers),
    K("general.ioUring", T_STR, general.ioUring),
    K("general.maxRoomsPerConnection", T_INT, general.maxRoomsPerConnection),
    K("general.maxRooms", T_INT, general.maxRooms),
    K("general.maxRoomNameLength", T_INT, general.maxRoomNameLength),
    K("general.resumeWindow", T_INT, general.resumeWindow),
    K("general.resumeMaxAway", T_INT, general.resumeMaxAway),
    K("general.resumeOutboxFrames", T_INT, general.resumeOutboxFrames),
    K("general.resumeOutboxBytes", T_INT, general.resumeOutboxBytes),
    K("general.resumeHistoryLines", T_INT, general.resumeHistoryLines),
    K("general.resumeHistoryBytes", T_INT, general.resumeHistoryBytes),
    K("general.resumeStateFile", T_STR, general.resumeStateFile),
    K("servers.web.enabled", T_BOOL, servers.web.enabled),
    K("servers.web.port", T_INT, servers.web.port),
    K("servers.web.bindIP", T_STR, servers.web.bindIP),
    K("servers.web.secure", T_BOOL, servers.web.secure),
    K("servers.web.certFile", T_STR, servers.web.certFile),
    K("servers.web.keyFile", T_STR, servers.web.keyFile),
    K("servers.web.http2", T_BOOL, servers.web.http2),
    K("servers.web.publicDir", T_STR, servers.web.publicDir),
    K("servers.web.urlPathForActions", T_STR, servers.web.urlPathForActions),
    K("servers.web.urlPathForFiles", T_STR, servers.web.urlPathForFiles),
    K("servers.web.queryRouting", T_BOOL, servers.web.queryRouting),
    K("servers.web.serverInformation", T_BOOL, servers.web.serverInformation),
    K("servers.web.requesterInformation", T_BOOL, servers.web.requesterInformation),
    K("servers.web.cookieKey", T_STR, servers.web.cookieKey),
    K("servers.web.cookieExpires", T_INT, servers.web.cookieExpires),
    K("servers.web.maxRequestBody", T_LONG, servers.web.maxRequestBody),
    K("servers.web.flatFileCacheDuration", T_INT, servers.web.flatFileCacheDuration),
    K("servers.web.maxConnections", T_INT, servers.web.maxConnections),
    K("servers.web.maxConnectionsPerIp", T_INT, servers.web.maxConnectionsPerIp),
    K("servers.web.handshakeRate", T_DOUBLE, servers.web.handshakeRate),
    K("servers.web.handshakeBurst", T_INT, servers.web.handshakeBurst),
    K("servers.websocket.enabled", T_BOOL, servers.websocket.enabled),
    K("servers.websocket.clientUrl", T_STR, servers.websocket.clientUrl),
    K("servers.websocket.clientJsPath", T_STR, servers.websocket.clientJsPath),
    K("servers.websocket.clientJsName", T_STR, servers.websocket.clientJsName),
    K("servers.websocket.destroyClientsOnShutdown", T_BOOL, servers.websocket.destroyClientsOnShutdown),
    K("servers.websocket.server.pathname", T_STR, servers.websocket.server.pathname),
    K("servers.websocket.server.transports", T_LIST, servers.websocket.server.transports),
    K("servers.websocket.server.pingInterval", T_INT, servers.websocket.server.pingInterval),
    K("servers.websocket.server.pingTimeout", T_INT, servers.websocket.server.pingTimeout),
    K("servers.websocket.server.upgradeTimeout", T_INT, servers.websocket.server.upgradeTimeout),
    K("servers.websocket.server.maxHttpBufferSize", T_LONG, servers.websocket.server.maxHttpBufferSize),
    K("servers.websocket.server.origins", T_LIST, servers.websocket.server.origins),
    K("servers.websocket.server.credentials", T_BOOL, servers.websocket.server.credentials),
    K("servers.websocket.server.methods", T_LIST, servers.websocket.server.methods),
    K("servers.websocket.server.maxAge", T_INT, servers.websocket.server.maxAge),
    K("servers.websocket.server.primusPingInterval", T_INT, servers.websocket.server.primusPingInterval),
    K("servers.websocket.server.maxLength", T_LONG, servers.websocket.server.maxLength),
    K("servers.websocket.server.queueMaxBytes", T_LONG, servers.websocket.server.queueMaxBytes),
    K("servers.websocket.server.queueMaxFrames", T_INT, servers.websocket.server.queueMaxFrames),
    K("servers.websocket.server.echo", T_BOOL, servers.websocket.server.echo),
    K("servers.websocket.server.allowEIO3", T_BOOL, servers.websocket.server.allowEIO3),
    K("servers.websocket.server.messageRate", T_DOUBLE, servers.websocket.server.messageRate),
    K("servers.websocket.server.messageBurst", T_INT, servers.websocket.server.messageBurst),
    K("servers.websocket.server.pollSleepMs", T_INT, servers.websocket.server.pollSleepMs),
    K("servers.websocket.server.pollDirect", T_BOOL, servers.websocket.server.pollDirect),
    K("servers.websocket.server.sse.replayEvents", T_INT, servers.websocket.server.sse.replayEvents),
    K("servers.websocket.server.sse.replayBytes", T_LONG, servers.websocket.server.sse.replayBytes),
    K("servers.websocket.server.sse.recycleBytes", T_LONG, servers.websocket.server.sse.recycleBytes),
    K("servers.websocket.server.sse.keepaliveMs", T_INT, servers.websocket.server.sse.keepaliveMs),
    K("servers.websocket.server.sse.replayTotalBytes", T_LONG, servers.websocket.server.sse.replayTotalBytes),
    K("servers.websocket.client.apiPath", T_STR, servers.websocket.client.apiPath),
    K("servers.websocket.client.cookieKey", T_STR, servers.websocket.client.cookieKey),
    K("servers.websocket.client.transports", T_LIST, servers.websocket.client.transports),
    K("servers.websocket.client.websocketFirst", T_BOOL, servers.websocket.client.websocketFirst),
    K("servers.websocket.client.rememberUpgrade", T_BOOL, servers.websocket.client.rememberUpgrade),
    K("servers.websocket.client.timeout", T_INT, servers.websocket.client.timeout),
    K("servers.websocket.client.reconnectMin", T_INT, servers.websocket.client.reconnectMin),
    K("servers.websocket.client.reconnectMax", T_INT, servers.websocket.client.reconnectMax),
    K("servers.websocket.client.reconnectFactor", T_DOUBLE, servers.websocket.client.reconnectFactor),
    K("servers.websocket.client.reconnectRetries", T_INT, servers.websocket.client.reconnectRetries),
    K("servers.websocket.client.queueSize", T_INT, servers.websocket.client.queueSize),
    K("servers.socketio.enabled", T_BOOL, servers.socketio.enabled),
    K("servers.socketio.path", T_STR, servers.socketio.path),
    K("servers.socketio.connectTimeout", T_INT, servers.socketio.connectTimeout),
    K("servers.socketio.conformance", T_BOOL, servers.socketio.conformance),
    K("servers.socketio.connectionStateRecovery", T_BOOL, servers.socketio.connectionStateRecovery),
    K("servers.engineio.path", T_STR, servers.engineio.path),
    K("redis.url", T_STR, redis.url),
    K("redis.connectTimeout", T_INT, redis.connectTimeout),
    K("redis.commandTimeout", T_INT, redis.commandTimeout),
    K("redis.prefix", T_STR, redis.prefix),
    K("redis.nodeTtl", T_INT, redis.nodeTtl),
    K("redis.compat", T_STR, redis.compat),
    K("upstream.urls", T_LIST, upstream.urls),
    K("upstream.actions", T_LIST, upstream.actions),
    K("upstream.keepLocalActions", T_BOOL, upstream.keepLocalActions),
    K("upstream.timeout", T_INT, upstream.timeout),
    K("upstream.maxInFlight", T_INT, upstream.maxInFlight),
    K("upstream.keepAlive", T_INT, upstream.keepAlive),
    K("upstream.maxRequestBytes", T_LONG, upstream.maxRequestBytes),
    K("upstream.maxResponseBytes", T_LONG, upstream.maxResponseBytes),
    K("upstream.documentationAction", T_STR, upstream.documentationAction),
    K("hooks.connect", T_STR, hooks.connect),
    K("hooks.disconnect", T_STR, hooks.disconnect),
    K("hooks.roomAdd", T_STR, hooks.roomAdd),
    K("hooks.roomLeave", T_STR, hooks.roomLeave),
    K("hooks.say", T_STR, hooks.say),
    K("hooks.timeout", T_INT, hooks.timeout),
    K("hooks.allowOnFailure", T_BOOL, hooks.allowOnFailure),
    K("serverApi.key", T_STR, serverApi.key),
    K("serverApi.prefix", T_STR, serverApi.prefix),
    K("tokens.secret", T_STR, tokens.secret),
    K("tokens.publicKeyFile", T_STR, tokens.publicKeyFile),
    K("tokens.algorithms", T_LIST, tokens.algorithms),
    K("tokens.require", T_BOOL, tokens.require),
    K("tokens.leeway", T_INT, tokens.leeway),
    K("tokens.audience", T_STR, tokens.audience),
    K("tokens.issuer", T_STR, tokens.issuer),
    K("tokens.queryParam", T_STR, tokens.queryParam),
    K("tokens.maxBytes", T_INT, tokens.maxBytes),
    K("serverApi.timeout", T_INT, serverApi.timeout),
    K("serverApi.maxFanout", T_INT, serverApi.maxFanout),
    K("ops.metricsPath", T_STR, ops.metricsPath),
    K("ops.metricsKey", T_STR, ops.metricsKey),
    K("ops.healthPath", T_STR, ops.healthPath),
    K("ops.readyPath", T_STR, ops.readyPath),
    K("ops.drainDelay", T_INT, ops.drainDelay),
    K("ops.drainWindow", T_INT, ops.drainWindow),
    K("modules", T_LIST, modules),
};
#undef K
#define NKEYS (sizeof(schema) / sizeof(schema[0]))

#define FIELD(cfg, k, T) ((T *)((char *)(cfg) + (k)->off))

static char **list_of(const char *const *items)
{
    size_t n = 0;
    while (items[n] != NULL)
        n++;
    char **l = calloc(n + 1, sizeof(*l));
    for (size_t i = 0; l != NULL && i < n; i++)
        l[i] = strdup(items[i]);
    return l;
}

size_t ag_config_list_len(char *const *list)
{
    size_t n = 0;
    while (list != NULL && list[n] != NULL)
        n++;
    return n;
}

int ag_config_list_has(char *const *list, const char *s)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static void list_free(char **l)
{
    for (size_t i = 0; l != NULL && l[i] != NULL; i++)
        free(l[i]);
    free(l);
}

ag_config_t *ag_config_create_default(void)
{
    ag_config_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->general.welcomeMessage = strdup("Welcome to the actiongate api");
    c->general.serverName = strdup("actiongate");
    c->general.apiVersion = strdup(AG_VERSION);
    c->general.id = strdup("");
    c->general.serverToken = strdup("change-me");
    c->general.channel = strdup("actionhero");
    c->general.simultaneousActions = 5;
    c->general.startingChatRooms = list_of((const char *[]){"defaultRoom", "otherRoom", NULL});
    c->general.announceRoomJoins = 0;
    c->general.trustedProxies = list_of((const char *[]){"127.0.0.1", "::1", NULL});
    c->general.logLevel = strdup("info");
    c->general.logFormat = strdup("text");
    c->general.logFile = strdup("");
    c->general.accessLog = strdup("");
    c->general.shutdownTimeout = 5000;
    c->general.workers = 0;
    c->general.ioUring = strdup("auto");
    c->general.maxRoomsPerConnection = 100;
    c->general.maxRooms = 10000;
    c->general.maxRoomNameLength = 256;
    c->general.resumeWindow = 120000;
    c->general.resumeMaxAway = 10000;
    c->general.resumeOutboxFrames = 64;
    c->general.resumeOutboxBytes = 65536;
    c->general.resumeHistoryLines = 100;
    c->general.resumeHistoryBytes = 262144;
    c->general.resumeStateFile = strdup("");

    c->servers.web.enabled = 1;
    c->servers.web.port = 8080;
    c->servers.web.bindIP = strdup("0.0.0.0");
    c->servers.web.certFile = strdup("");
    c->servers.web.keyFile = strdup("");
    c->servers.web.publicDir = strdup("");
    c->servers.web.urlPathForActions = strdup("api");
    c->servers.web.urlPathForFiles = strdup("public");
    c->servers.web.queryRouting = 1;
    c->servers.web.serverInformation = 1;
    c->servers.web.requesterInformation = 1;
    c->servers.web.cookieKey = strdup("sessionID");
    c->servers.web.cookieExpires = 3600000;
    c->servers.web.maxRequestBody = 10485760;
    c->servers.web.flatFileCacheDuration = 60;
    c->servers.web.maxConnections = 0;
    c->servers.web.maxConnectionsPerIp = 1000;
    c->servers.web.handshakeRate = 20;
    c->servers.web.handshakeBurst = 200;

    c->servers.websocket.enabled = 1;
    c->servers.websocket.clientUrl = strdup("window.location.origin");
    c->servers.websocket.clientJsPath = strdup("javascript/");
    c->servers.websocket.clientJsName = strdup("ActionheroWebsocketClient");
    c->servers.websocket.destroyClientsOnShutdown = 0;
    c->servers.websocket.server.pathname = strdup("/primus");
    c->servers.websocket.server.transports = list_of((const char *[]){"polling", "websocket", "sse", NULL});
    c->servers.websocket.server.pingInterval = 25000;
    c->servers.websocket.server.pingTimeout = 20000;
    c->servers.websocket.server.upgradeTimeout = 10000;
    c->servers.websocket.server.maxHttpBufferSize = 1000000;
    c->servers.websocket.server.origins = list_of((const char *[]){"*", NULL});
    c->servers.websocket.server.credentials = 0;
    c->servers.websocket.server.methods = list_of((const char *[]){"GET", "POST", NULL});
    c->servers.websocket.server.maxAge = 86400;
    c->servers.websocket.server.primusPingInterval = 30000;
    c->servers.websocket.server.allowEIO3 = 1;
    c->servers.websocket.server.maxLength = 1048576;
    c->servers.websocket.server.queueMaxBytes = 4194304;
    c->servers.websocket.server.queueMaxFrames = 4096;
    c->servers.websocket.server.echo = 0;
    c->servers.websocket.server.messageRate = 100;
    c->servers.websocket.server.messageBurst = 200;
    c->servers.websocket.server.pollSleepMs = 1000;
    c->servers.websocket.server.pollDirect = 1;
    c->servers.websocket.server.sse.replayEvents = 512;
    c->servers.websocket.server.sse.replayBytes = 1048576;
    c->servers.websocket.server.sse.recycleBytes = 8388608;
    c->servers.websocket.server.sse.keepaliveMs = 15000;
    c->servers.websocket.server.sse.replayTotalBytes = 67108864;
    c->servers.websocket.client.apiPath = strdup("/api");
    c->servers.websocket.client.cookieKey = strdup("sessionID");
    c->servers.websocket.client.transports = list_of((const char *[]){"polling", "websocket", "sse", NULL});
    c->servers.websocket.client.websocketFirst = 0;
    c->servers.websocket.client.rememberUpgrade = 1;
    c->servers.websocket.client.timeout = 10000;
    c->servers.websocket.client.reconnectMin = 500;
    c->servers.websocket.client.reconnectMax = 30000;
    c->servers.websocket.client.reconnectFactor = 2;
    c->servers.websocket.client.reconnectRetries = 0;
    c->servers.websocket.client.queueSize = 100;
    c->servers.socketio.enabled = 1;
    c->servers.socketio.path = strdup("/socket.io");
    c->servers.socketio.connectTimeout = 45000;
    c->servers.engineio.path = strdup("/engine.io");

    c->redis.url = strdup("");
    c->redis.connectTimeout = 2000;
    c->redis.commandTimeout = 5000;
    c->redis.prefix = strdup("actiongate:");
    c->redis.nodeTtl = 5;
    c->redis.compat = strdup("");

    c->upstream.urls = list_of((const char *[]){NULL});
    c->upstream.actions = list_of((const char *[]){"*", NULL});
    c->upstream.keepLocalActions = 1;
    c->upstream.timeout = 10000;
    c->upstream.maxInFlight = 1024;
    c->upstream.keepAlive = 2000;
    c->upstream.maxRequestBytes = 1048576;
    c->upstream.maxResponseBytes = 1048576;
    c->upstream.documentationAction = strdup("swagger");
    c->hooks.connect = strdup("");
    c->hooks.disconnect = strdup("");
    c->hooks.roomAdd = strdup("");
    c->hooks.roomLeave = strdup("");
    c->hooks.say = strdup("");
    c->hooks.timeout = 3000;
    c->serverApi.key = strdup("");
    c->serverApi.prefix = strdup("/server");
    c->tokens.secret = strdup("");
    c->tokens.publicKeyFile = strdup("");
    c->tokens.algorithms = list_of((const char *[]){NULL});
    c->tokens.require = 0;
    c->tokens.leeway = 0;
    c->tokens.audience = strdup("");
    c->tokens.issuer = strdup("");
    c->tokens.queryParam = strdup("token");
    c->tokens.maxBytes = 8192;
    c->serverApi.timeout = 2000;
    c->serverApi.maxFanout = 10000;

    c->ops.metricsPath = strdup("/metrics");
    c->ops.metricsKey = strdup("");
    c->ops.healthPath = strdup("/healthz");
    c->ops.readyPath = strdup("/readyz");
    c->ops.drainDelay = 0;
    c->ops.drainWindow = 0;
    c->modules = list_of((const char *[]){NULL});
    /* One check for every allocation above. */
    for (size_t i = 0; i < NKEYS; i++) {
        void *p = schema[i].type == T_STR    ? (void *)*FIELD(c, &schema[i], char *)
                  : schema[i].type == T_LIST ? (void *)*FIELD(c, &schema[i], char **)
                                             : c;
        if (p == NULL) {
            ag_config_destroy(c);
            return NULL;
        }
    }
    return c;
}

void ag_config_destroy(ag_config_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        if (schema[i].type == T_STR)
            free(*FIELD(c, &schema[i], char *));
        else if (schema[i].type == T_LIST)
            list_free(*FIELD(c, &schema[i], char **));
    }
    free(c->path);
    free(c);
}

/* --- YAML --- */

/* A configuration is a few kilobytes and a few levels deep. These bounds keep a mistaken or hostile file (a device, a
 * generated blob, thousands of nested brackets, on which libyaml's scanner spends time quadratic in the depth) from
 * costing more than a moment. */
#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_DEPTH 32
/* Keys visited by the walk: a section repeated through aliases is walked again each time it appears. */
#define MAX_VISITS 100000

typedef struct {
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t errlen;
    size_t visits;
    unsigned char set[NKEYS]; /* a value key already set: a second one is an error, not a silent override */
} loader_t;

/* An error is one line on a terminal: a quoted value's line breaks and escape sequences are shown as '?'. */
static void one_line(char *msg)
{
    for (char *p = msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

__attribute__((format(printf, 3, 4))) static int fail(loader_t *l, yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    one_line(msg);
    snprintf(l->err, l->errlen, "%s:%zu: %s", l->name, n != NULL ? n->start_mark.line + 1 : 0, msg);
    return -1;
}

static const char *scalar(yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A scalar's text is used as a C string: one with a NUL byte inside would silently load as its first part. */
static int has_nul(yaml_node_t *n)
{
    return strlen(scalar(n)) != n->data.scalar.length;
}

static int is_null_scalar(yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = scalar(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0;
}

/* A list key takes a sequence of strings, one string, null (the empty list), or a mapping whose keys are the items
 * (actionhero's startingChatRooms: {defaultRoom: {}}). Every item must be a scalar node: read as a scalar, any other
 * node's pair or item array is taken for text and read past its end. */
static int set_list(loader_t *l, ag_config_t *c, const ckey_t *k, yaml_node_t *n)
{
    size_t count;
    if (n->type == YAML_SCALAR_NODE)
        count = is_null_scalar(n) ? 0 : 1;
    else if (n->type == YAML_SEQUENCE_NODE)
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    else
        count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    char **list = calloc(count + 1, sizeof(*list));
    if (list == NULL)
        return fail(l, n, "%s: out of memory", k->path);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = n->type == YAML_SCALAR_NODE     ? n
                            : n->type == YAML_SEQUENCE_NODE ? yaml_document_get_node(l->doc, n->data.sequence.items.start[i])
                                                            : yaml_document_get_node(l->doc, n->data.mapping.pairs.start[i].key);
        int ret = 0;
        if (item == NULL || item->type != YAML_SCALAR_NODE)
            ret = fail(l, item != NULL ? item : n, "%s: expected a list of strings (or a mapping with string keys)", k->path);
        else if (has_nul(item))
            ret = fail(l, item, "%s: a NUL byte in \"%s\"", k->path, scalar(item));
        else if ((list[i] = strdup(scalar(item))) == NULL)
            ret = fail(l, item, "%s: out of memory", k->path);
        if (ret != 0) {
            list_free(list);
            return ret;
        }
    }
    list_free(*FIELD(c, k, char **));
    *FIELD(c, k, char **) = list;
    return 0;
}

/* The whole text as a number (strtod accepts 1e6, as the JavaScript configs this mirrors do). */
static int parse_double(const char *s, double *d)
{
    char *end;
    errno = 0;
    *d = strtod(s, &end);
    return *s == '\0' || *end != '\0' || errno != 0 ? -1 : 0;
}

static int set_value(loader_t *l, ag_config_t *c, const ckey_t *k, yaml_node_t *n)
{
    if (k->type == T_LIST)
        return set_list(l, c, k, n);
    if (n->type != YAML_SCALAR_NODE)
        return fail(l, n, "%s: expected a %s, not a list or mapping", k->path,
                    k->type == T_STR    ? "string"
                    : k->type == T_BOOL ? "boolean"
                                        : "number");
    const char *s = scalar(n);
    if (has_nul(n))
        return fail(l, n, "%s: a NUL byte in \"%s\"", k->path, s);
    double d;
    switch (k->type) {
    case T_STR: {
        char *v = strdup(is_null_scalar(n) ? "" : s);
        if (v == NULL)
            return fail(l, n, "%s: out of memory", k->path);
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = v;
        return 0;
    }
    case T_BOOL:
        if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
            *FIELD(c, k, int) = 1;
        else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
            *FIELD(c, k, int) = 0;
        else
            return fail(l, n, "%s: expected true or false, got \"%s\"", k->path, s);
        return 0;
    case T_INT:
    case T_LONG: {
        /* The range is checked on the double: converting one the integer cannot hold (1e300, nan) is undefined.
         * -(double)INT_MIN and -(double)LONG_MIN are 2^31 and 2^63 exactly; every whole number below them fits. */
        double limit = k->type == T_INT ? -(double)INT_MIN : -(double)LONG_MIN;
        if (parse_double(s, &d) != 0 || !(d >= 0 && d < limit) || d != floor(d))
            return fail(l, n, "%s: expected a whole number from 0 to %ld, got \"%s\"", k->path,
                        k->type == T_INT ? (long)INT_MAX : LONG_MAX, s);
        if (k->type == T_INT)
            *FIELD(c, k, int) = (int)d;
        else
            *FIELD(c, k, long) = (long)d;
        return 0;
    }
    case T_DOUBLE:
        if (parse_double(s, &d) != 0 || !isfinite(d))
            return fail(l, n, "%s: expected a number, got \"%s\"", k->path, s);
        *FIELD(c, k, double) = d;
        return 0;
    default:
        return -1;
    }
}

static int walk(loader_t *l, ag_config_t *c, yaml_node_t *map, const char *prefix)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, "%s: expected a mapping", prefix[0] ? prefix : "top level");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(l->doc, p->key), *vn = yaml_document_get_node(l->doc, p->value);
        if (kn == NULL || vn == NULL)
            return fail(l, map, "%s: invalid mapping", prefix[0] ? prefix : "top level");
        if (kn->type != YAML_SCALAR_NODE)
            return fail(l, kn, "keys must be strings");
        if (has_nul(kn))
            return fail(l, kn, "a NUL byte in a key");
        char path[256];
        int plen = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", scalar(kn));
        if (plen < 0 || (size_t)plen >= sizeof(path))
            return fail(l, kn, "unknown key \"%.64s...\"", path);
        if (++l->visits > MAX_VISITS)
            return fail(l, kn, "more than %d keys (counting each use of an alias)", MAX_VISITS);
        const ckey_t *k = NULL;
        int is_section = 0;
        for (size_t i = 0; i < NKEYS; i++) {
            if (strcmp(schema[i].path, path) == 0)
                k = &schema[i];
            else if (strncmp(schema[i].path, path, (size_t)plen) == 0 && schema[i].path[plen] == '.')
                is_section = 1;
        }
        if (k != NULL) {
            if (l->set[k - schema])
                return fail(l, kn, "duplicate key \"%s\"", path);
            l->set[k - schema] = 1;
            if (set_value(l, c, k, vn) != 0)
                return -1;
        } else if (is_section) {
            /* A section may appear more than once: its keys merge. The recursion is as deep as the schema's sections,
             * whatever aliases do. */
            if (is_null_scalar(vn))
                continue;
            if (walk(l, c, vn, path) != 0)
                return -1;
        } else {
            return fail(l, kn, "unknown key \"%s\"", path);
        }
    }
    return 0;
}

static void syntax_error(yaml_parser_t *parser, const char *name, char *errbuf, size_t errlen)
{
    if (parser->error == YAML_MEMORY_ERROR)
        snprintf(errbuf, errlen, "%s:0: out of memory", name);
    else
        snprintf(errbuf, errlen, "%s:%zu: %s", name, parser->problem_mark.line + 1,
                 parser->problem != NULL ? parser->problem : "invalid YAML");
}

/* Refuses a document nested deeper than MAX_DEPTH. The event parser stops as soon as the bound is crossed; loading
 * the document would first scan the whole nest. */
static int check_depth(const char *yaml, size_t len, const char *name, char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(errbuf, errlen, "%s:0: out of memory", name);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    int depth = 0, ret = 0, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(&parser, name, errbuf, errlen);
            ret = -1;
            break;
        }
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > MAX_DEPTH) {
                snprintf(errbuf, errlen, "%s:%zu: nested deeper than %d levels", name, ev.start_mark.line + 1, MAX_DEPTH);
                ret = -1;
                done = 1;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_DOCUMENT_END_EVENT: /* only the first document is loaded */
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ret;
}

static ag_config_t *load_parser(yaml_parser_t *parser, const char *name, char *errbuf, size_t errlen)
{
    ag_config_t *c = ag_config_create_default();
    if (c == NULL) {
        snprintf(errbuf, errlen, "%s:0: out of memory", name);
        return NULL;
    }
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc)) {
        syntax_error(parser, name, errbuf, errlen);
        ag_config_destroy(c);
        return NULL;
    }
    loader_t l = {&doc, name, errbuf, errlen, 0, {0}};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int ret = 0;
    if (root != NULL && !is_null_scalar(root))
        ret = walk(&l, c, root, "");
    if (ret == 0)
        ret = ag__config_check(c, name, errbuf, errlen);
    yaml_document_delete(&doc);
    if (ret != 0) {
        one_line(errbuf); /* the checks after the walk quote values too */
        ag_config_destroy(c);
        return NULL;
    }
    c->path = strdup(name);
    return c;
}

ag_config_t *ag_config_load_buffer(const char *yaml, size_t len, const char *name, char *errbuf, size_t errlen)
{
    if (len > MAX_FILE_BYTES) {
        snprintf(errbuf, errlen, "%s:0: larger than %d bytes", name, MAX_FILE_BYTES);
        return NULL;
    }
    if (check_depth(yaml, len, name, errbuf, errlen) != 0)
        return NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(errbuf, errlen, "%s:0: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    ag_config_t *c = load_parser(&parser, name, errbuf, errlen);
    yaml_parser_delete(&parser);
    return c;
}

ag_config_t *ag_config_load_string(const char *yaml, const char *name, char *errbuf, size_t errlen)
{
    return ag_config_load_buffer(yaml, strlen(yaml), name, errbuf, errlen);
}

ag_config_t *ag_config_load(const char *path, char *errbuf, size_t errlen)
{
    size_t len;
    char *buf = ag_read_file(path, MAX_FILE_BYTES, &len);
    if (buf == NULL) {
        if (errno == EFBIG)
            snprintf(errbuf, errlen, "%s:0: larger than %d bytes", path, MAX_FILE_BYTES);
        else
            snprintf(errbuf, errlen, "%s:0: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    ag_config_t *c = ag_config_load_buffer(buf, len, path, errbuf, errlen);
    free(buf);
    return c;
}
