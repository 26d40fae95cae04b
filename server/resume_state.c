#include "resume_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cluster.h"
#include "node.h"
#include "outbox.h"
#include "rooms.h"
#include "store/history.h"
#include "token.h"

#define FORMAT "actiongate resume state"
#define VERSION 1
/* a file written a little in the future is a clock step, not a forgery: tolerated this much */
#define CLOCK_SLACK_MS 60000
/* whatever the configuration says, a file is never read past this */
#define HARD_MAX_BYTES ((uint64_t)1 << 30)
/* fingerprints, users and messageIds are strings a client chose: the bound the file holds them to */
#define STRING_MAX 4096
/* a token's claims and the connect hook's data, each as JSON text (a token is at most tokens.maxBytes) */
#define OBJECT_MAX 65536

static const char hexdigits[] = "0123456789abcdef";

int ag_resume_state_on(const ag_server_t *s)
{
    const ag_config_t *cfg = s->config;
    return cfg->general.resumeStateFile[0] != '\0' && cfg->general.resumeWindow > 0 && s->store->ops->history_dump != NULL &&
           s->store->ops->history_load != NULL;
}

int ag_resume_state_keeps(const ag_conn_t *c)
{
    return c->server->stopping && ag_conn_is_resumable(c) && c->accepted && !ag_conn_is_closed(c) && ag_resume_state_on(c->server);
}

int ag_resume_state_busy(ag_server_t *s)
{
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&s->conns, &it, &k, &v);) {
        ag_conn_t *c = v;
        if (ag_resume_state_keeps(c) && (c->pending_actions != 0 || c->joining != 0))
            return 1;
    }
    return 0;
}

/* --- saving --- */

static json_t *outbox_json(const ag_outbox_t *o)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < o->n; i++) {
        const ag_outbox_entry_t *e = ag_outbox_at(o, i);
        if (e->seq <= o->floor)
            continue; /* kept from before a frame that could not be (outbox.c): no resume reaches it */
        json_t *mid = e->message_id != NULL ? json_string(e->message_id) : json_null();
        if (json_array_append_new(a, json_pack("[I,o,s%]", (json_int_t)e->seq, mid, e->frame->data, e->frame->len)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *conn_json(ag_conn_t *c)
{
    const char *token;
    const ag_outbox_t *o;
    uint64_t left;
    if (ag_conn_resume_info(c, &token, &o, &left) != AG_OK)
        return NULL;
    json_t *rooms = json_array();
    for (const ag_room_member_t *m = c->rooms_first; rooms != NULL && m != NULL; m = ag__room_next(m)) {
        uint64_t epoch, since;
        char e[17];
        ag__room_resume_point(m, &epoch, &since);
        snprintf(e, sizeof(e), "%016llx", (unsigned long long)epoch);
        if (json_array_append_new(rooms, json_pack("[s,s,I]", ag__room_name(m), e, (json_int_t)since)) != 0) {
            json_decref(rooms);
            rooms = NULL;
        }
    }
    json_t *outbox = outbox_json(o);
    if (rooms == NULL || outbox == NULL) {
        json_decref(rooms);
        json_decref(outbox);
        return NULL;
    }
    return json_pack("{s:I,s:s,s:s,s:s,s:s?,s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o,s:O?,s:O?}", "worker", (json_int_t)c->server->worker,
                     "id", c->id, "token", token, "fingerprint", c->fingerprint, "user", c->user, "remoteIp", c->remote_ip,
                     "transport", c->transport_name != NULL ? c->transport_name : "websocket", "connectedAt",
                     (json_int_t)c->connected_at, "left", (json_int_t)left, "seq", (json_int_t)o->seq, "floor",
                     (json_int_t)o->floor, "outbox", outbox, "rooms", rooms, "claims", c->claims, "data", c->hook_data);
}

void ag_resume_state_collect(ag_server_t *s)
{
    if (!ag_resume_state_on(s) || s->resume_saved != NULL)
        return;
    json_t *saved = json_array();
    size_t n = 0, cap = s->num_conns;
    ag_conn_t **carried = cap != 0 ? malloc(cap * sizeof(*carried)) : NULL;
    const char *k;
    void *v;
    for (size_t it = 0; saved != NULL && ag_map_next(&s->conns, &it, &k, &v);) {
        ag_conn_t *c = v;
        if (!ag_resume_state_keeps(c))
            continue;
        json_t *j = conn_json(c);
        if (j == NULL || json_array_append_new(saved, j) != 0) {
            ag_log(AG_LOG_WARN, "resume", c->id, "cannot be saved: out of memory");
            continue;
        }
        if (!ag_conn_is_away(c) && n < cap)
            carried[n++] = ag_conn_addref(c);
    }
    s->resume_saved = saved;
    /* from this instant on nothing reaches them: what they were sent is saved, the rest their clients will not miss */
    for (size_t i = 0; i < n; i++) {
        ag_conn_close(carried[i], &AG_DISCONNECT_SHUTDOWN);
        ag_conn_release(carried[i]);
    }
    free(carried);
}

static void on_dump(void *data, const char *err, json_t *res)
{
    json_t **out = data;
    if (err == NULL && json_is_object(res))
        *out = json_incref(res);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len != 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Atomically: a private temporary file next to it, synced, renamed over path. 0, or -1 with errno. */
static int write_file(const char *path, const char *text, size_t len)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    /* exactly 0600 whatever the umask: the file holds the connections' secrets */
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

void ag_resume_state_config_id(const ag_config_t *cfg, size_t workers, char *buf, size_t size)
{
    const typeof(cfg->general) *g = &cfg->general;
    snprintf(buf, size, "port=%d workers=%zu window=%d away=%d outbox=%d/%d history=%d/%d rooms=%d/%d/%d", cfg->servers.web.port,
             workers, g->resumeWindow, g->resumeMaxAway, g->resumeOutboxFrames, g->resumeOutboxBytes, g->resumeHistoryLines,
             g->resumeHistoryBytes, g->maxRooms, g->maxRoomsPerConnection, g->maxRoomNameLength);
}

void ag_resume_state_save(ag_server_t *const *nodes, size_t n)
{
    ag_server_t *s = nodes[0];
    if (!ag_resume_state_on(s))
        return;
    const char *path = s->config->general.resumeStateFile;
    json_t *conns = json_array(), *rooms = NULL;
    for (size_t i = 0; i < n; i++) {
        if (nodes[i]->resume_saved != NULL)
            json_array_extend(conns, nodes[i]->resume_saved);
        json_decref(nodes[i]->resume_saved);
        nodes[i]->resume_saved = NULL;
    }
    if (json_array_size(conns) == 0) {
        json_decref(conns);
        ag_log(AG_LOG_INFO, "resume", NULL, "no resumable connection to save");
        return;
    }
    /* with several workers, the tag each one's clients name to reach it (their route, their sids): taken back at boot */
    json_t *routes = json_array();
    for (size_t i = 0; routes != NULL && i < n; i++) {
        const char *tag = ag_cluster_tag(nodes[i]);
        json_array_append_new(routes, tag != NULL ? json_string(tag) : json_null());
    }
    s->store->ops->history_dump(s->store, on_dump, &rooms);
    char config[256];
    ag_resume_state_config_id(s->config, n, config, sizeof(config));
    size_t nconns = json_array_size(conns), nrooms = json_object_size(rooms);
    json_t *root =
        rooms != NULL && routes != NULL
            ? json_pack("{s:s,s:i,s:s,s:s,s:I,s:o,s:o,s:o}", "format", FORMAT, "version", VERSION, "node", s->config->general.id,
                        "config", config, "savedAt", (json_int_t)ag_now_ms(), "routes", routes, "rooms", rooms, "conns", conns)
            : NULL;
    if (root == NULL) {
        json_decref(rooms);
        json_decref(routes);
        json_decref(conns);
    }
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL) {
        ag_log(AG_LOG_ERROR, "resume", NULL, "resume state not saved: out of memory");
        return;
    }
    if (write_file(path, text, strlen(text)) != 0)
        ag_log(AG_LOG_ERROR, "resume", NULL, "resume state not saved to %s: %s", path, strerror(errno));
    else
        ag_log(AG_LOG_INFO, "resume", NULL, "saved %zu resumable connections and the history of %zu rooms to %s", nconns, nrooms,
               path);
    free(text);
}

/* --- checking --- */

void ag_resume_state_expect(ag_resume_state_expect_t *exp, const ag_config_t *cfg, size_t workers, uint64_t now_ms)
{
    const typeof(cfg->general) *g = &cfg->general;
    *exp = (ag_resume_state_expect_t){
        .node = g->id,
        .now_ms = now_ms,
        .window_ms = (uint64_t)g->resumeWindow,
        .workers = workers,
        .max_conns = (size_t)g->resumeMaxAway,
        .max_rooms = (size_t)g->maxRooms,
        .max_rooms_per_conn = (size_t)g->maxRoomsPerConnection,
        .room_name_max = (size_t)g->maxRoomNameLength,
        .outbox_frames = (size_t)g->resumeOutboxFrames,
        .outbox_bytes = (size_t)g->resumeOutboxBytes,
        .history_lines = (size_t)g->resumeHistoryLines,
        .history_bytes = (size_t)g->resumeHistoryBytes,
    };
    ag_resume_state_config_id(cfg, workers, exp->config, sizeof(exp->config));
}

/* a + b and a * b, stuck at HARD_MAX_BYTES */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > HARD_MAX_BYTES || b > HARD_MAX_BYTES - a ? HARD_MAX_BYTES : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return a != 0 && b > HARD_MAX_BYTES / a ? HARD_MAX_BYTES : a * b;
}

uint64_t ag_resume_state_max_bytes(const ag_resume_state_expect_t *e)
{
    /* JSON escaping at most doubles a frame's or a line's text (it is JSON text already: quotes and backslashes) */
    uint64_t room_ref = sat_add(2 * (uint64_t)e->room_name_max, 64);
    uint64_t conn = sat_add(sat_add(2 * (uint64_t)e->outbox_bytes, sat_mul(e->outbox_frames, 2 * STRING_MAX + 64)),
                            sat_add(sat_mul(e->max_rooms_per_conn, room_ref), 4 * STRING_MAX + 4 * OBJECT_MAX + 1024));
    uint64_t room = sat_add(sat_add(2 * (uint64_t)e->history_bytes, sat_mul(e->history_lines, 64)), room_ref + 128);
    return sat_add(sat_add(sat_mul(sat_mul(e->workers, e->max_conns), conn), sat_mul(e->max_rooms, room)), 4096);
}

static int is_hex(const char *s, size_t len)
{
    return s != NULL && strlen(s) == len && strspn(s, hexdigits) == len;
}

/* A string of at most max bytes without NUL, or NULL. */
static const char *str_of(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    return s != NULL && json_string_length(v) <= max && strlen(s) == json_string_length(v) ? s : NULL;
}

/* An integer in [0, max], or -1. */
static json_int_t uint_of(const json_t *v, json_int_t max)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max ? json_integer_value(v) : -1;
}

#define FAIL(...)                                                                                                                  \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        return -1;                                                                                                                 \
    } while (0)

static int check_conn(const json_t *c, size_t index, const ag_resume_state_expect_t *e, json_t *ids, char *err, size_t errlen)
{
    const char *id = str_of(json_object_get(c, "id"), 36);
    if (!json_is_object(c) || id == NULL || id[0] == '\0' || strspn(id, "0123456789abcdef-") != strlen(id))
        FAIL("connection %zu: no valid id", index);
    if (json_object_get(ids, id) != NULL)
        FAIL("connection %zu: id %s twice", index, id);
    json_object_set_new(ids, id, json_true());
    json_int_t worker = uint_of(json_object_get(c, "worker"), (json_int_t)e->workers - 1);
    if (worker < 0)
        FAIL("connection %s: no worker of this node", id);
    if (!is_hex(json_string_value(json_object_get(c, "token")), AG_RESUME_TOKEN_LEN))
        FAIL("connection %s: no valid token", id);
    const json_t *user = json_object_get(c, "user");
    if (str_of(json_object_get(c, "fingerprint"), STRING_MAX) == NULL ||
        (user != NULL && !json_is_null(user) && str_of(user, STRING_MAX) == NULL) ||
        str_of(json_object_get(c, "remoteIp"), 63) == NULL || str_of(json_object_get(c, "transport"), 16) == NULL ||
        uint_of(json_object_get(c, "connectedAt"), INT64_MAX) < 0)
        FAIL("connection %s: a bad fingerprint, user, address, transport or time", id);
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(c, i == 0 ? "claims" : "data");
        if (v != NULL && !json_is_null(v) && (!json_is_object(v) || json_dumpb(v, NULL, 0, JSON_COMPACT) > OBJECT_MAX))
            FAIL("connection %s: its %s not an object within bounds", id, i == 0 ? "token's claims are" : "hook's data is");
    }
    if (uint_of(json_object_get(c, "left"), (json_int_t)e->window_ms) < 0)
        FAIL("connection %s: window left out of bounds", id);
    json_int_t seq = uint_of(json_object_get(c, "seq"), INT64_MAX), floor = uint_of(json_object_get(c, "floor"), INT64_MAX);
    const json_t *outbox = json_object_get(c, "outbox");
    size_t n = json_array_size(outbox);
    if (seq < 0 || floor < 0 || floor > seq || !json_is_array(outbox) || n > e->outbox_frames || (json_int_t)n != seq - floor)
        FAIL("connection %s: its numbered frames do not add up", id);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(outbox, i), *mid = json_array_get(it, 1);
        const char *text = str_of(json_array_get(it, 2), e->outbox_bytes);
        json_int_t s = uint_of(json_array_get(it, 0), INT64_MAX);
        char head[40];
        int hl = snprintf(head, sizeof(head), "{\"seq\":%lld", (long long)s);
        if (json_array_size(it) != 3 || s != floor + 1 + (json_int_t)i || (!json_is_null(mid) && str_of(mid, STRING_MAX) == NULL) ||
            text == NULL || strncmp(text, head, (size_t)hl) != 0 || (text[hl] != ',' && text[hl] != '}'))
            FAIL("connection %s: numbered frame %zu malformed or out of order", id, i);
        bytes += json_string_length(json_array_get(it, 2));
    }
    if (bytes > e->outbox_bytes && n > 1)
        FAIL("connection %s: numbered frames over resumeOutboxBytes", id);
    const json_t *rooms = json_object_get(c, "rooms");
    if (!json_is_array(rooms) || json_array_size(rooms) > e->max_rooms_per_conn)
        FAIL("connection %s: rooms missing or over maxRoomsPerConnection", id);
    for (size_t i = 0; i < json_array_size(rooms); i++) {
        const json_t *r = json_array_get(rooms, i);
        const char *name = str_of(json_array_get(r, 0), e->room_name_max);
        if (json_array_size(r) != 3 || name == NULL || name[0] == '\0' || !is_hex(json_string_value(json_array_get(r, 1)), 16) ||
            uint_of(json_array_get(r, 2), INT64_MAX) < 0)
            FAIL("connection %s: room %zu malformed", id, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(name, json_string_value(json_array_get(json_array_get(rooms, j), 0))) == 0)
                FAIL("connection %s: room %s twice", id, name);
    }
    return 0;
}

static int check(const json_t *root, const ag_resume_state_expect_t *e, char *err, size_t errlen)
{
    if (!json_is_object(root) || json_string_value(json_object_get(root, "format")) == NULL ||
        strcmp(json_string_value(json_object_get(root, "format")), FORMAT) != 0)
        FAIL("not a resume state file");
    if (uint_of(json_object_get(root, "version"), INT64_MAX) != VERSION)
        FAIL("version not understood");
    const char *node = json_string_value(json_object_get(root, "node")),
               *config = json_string_value(json_object_get(root, "config"));
    if (node == NULL || strcmp(node, e->node) != 0)
        FAIL("written by another node (general.id \"%.64s\")", node != NULL ? node : "?");
    if (config == NULL || strcmp(config, e->config) != 0)
        FAIL("written under another configuration (%.200s)", config != NULL ? config : "?");
    json_int_t saved = uint_of(json_object_get(root, "savedAt"), INT64_MAX);
    if (saved < 0 || (uint64_t)saved > e->now_ms + CLOCK_SLACK_MS)
        FAIL("written in the future");
    if ((uint64_t)saved + e->window_ms < e->now_ms)
        FAIL("stale: written %llu ms ago, over general.resumeWindow", (unsigned long long)(e->now_ms - (uint64_t)saved));
    const json_t *routes = json_object_get(root, "routes");
    if (!json_is_array(routes) || json_array_size(routes) != e->workers)
        FAIL("routes missing or not one per worker");
    for (size_t i = 0; i < e->workers; i++)
        if (!json_is_null(json_array_get(routes, i)) && !ag_cluster_is_tag(json_string_value(json_array_get(routes, i))))
            FAIL("route %zu is not a tag", i);
    const json_t *rooms = json_object_get(root, "rooms"), *conns = json_object_get(root, "conns");
    if (!json_is_object(rooms) || json_object_size(rooms) > e->max_rooms)
        FAIL("rooms missing or over maxRooms");
    const char *name;
    json_t *h;
    json_object_foreach((json_t *)rooms, name, h)
    {
        const char *why = NULL;
        if (name[0] == '\0' || strlen(name) > e->room_name_max)
            FAIL("a room name out of bounds");
        ag_store_hist_t *hist = ag_store_hist_load(h, e->history_lines, e->history_bytes, &why);
        if (hist == NULL)
            FAIL("room %.200s: %s", name, why);
        ag_store_hist_free(hist);
    }
    if (!json_is_array(conns) || json_array_size(conns) > e->max_conns * e->workers)
        FAIL("connections missing or over resumeMaxAway");
    json_t *ids = json_object();
    int ret = ids != NULL ? 0 : (snprintf(err, errlen, "out of memory"), -1);
    for (size_t i = 0; ret == 0 && i < json_array_size(conns); i++)
        ret = check_conn(json_array_get(conns, i), i, e, ids, err, errlen);
    json_decref(ids);
    return ret;
}

#undef FAIL

json_t *ag_resume_state_parse(const char *buf, size_t len, const ag_resume_state_expect_t *exp, char *err, size_t errlen)
{
    if (len > ag_resume_state_max_bytes(exp)) {
        snprintf(err, errlen, "larger than this configuration can have written");
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errlen, "damaged (%s at byte %d)", je.text, je.position);
        return NULL;
    }
    if (check(root, exp, err, errlen) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* --- loading --- */

/* The file's bytes (malloc'ed) into *out, deleted once read; 0, 1 when there is none, -1 with err. */
static int read_file(const char *path, uint64_t max, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0) {
        snprintf(err, errlen, "cannot be opened: %s", strerror(errno));
        return -1;
    }
    unlink(path); /* read once, whatever it holds: a refused file does not come back at the next start */
    struct stat st;
    char *buf = NULL;
    int ret = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(err, errlen, "not a regular file");
    else if ((uint64_t)st.st_size > max)
        snprintf(err, errlen, "%lld bytes, larger than this configuration can have written", (long long)st.st_size);
    else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        snprintf(err, errlen, "out of memory");
    else {
        size_t got = 0;
        ssize_t r = 0;
        while (got < (size_t)st.st_size && ((r = read(fd, buf + got, (size_t)st.st_size - got)) > 0 || (r < 0 && errno == EINTR)))
            got += r > 0 ? (size_t)r : 0;
        if (got != (size_t)st.st_size) {
            snprintf(err, errlen, "read %zu of %lld bytes", got, (long long)st.st_size);
        } else {
            *out = buf;
            *len = got;
            buf = NULL;
            ret = 0;
        }
    }
    free(buf);
    close(fd);
    return ret;
}

/* The saved connections in the order their windows end (the window's list stays in order: ag_conn_restore). */
static int by_left(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "left"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "left"));
    return x < y ? -1 : x > y;
}

static void on_loaded(void *data, const char *err, json_t *res)
{
    (void)res;
    *(const char **)data = err;
}

static int restore_conn(ag_server_t *s, const json_t *j, uint64_t elapsed)
{
    uint64_t left = (uint64_t)json_integer_value(json_object_get(j, "left"));
    if (left <= elapsed)
        return 0; /* its window ended while the node was down */
    const json_t *exp = json_object_get(json_object_get(j, "claims"), "exp");
    if (json_is_integer(exp) && json_integer_value(exp) >= 0 && (uint64_t)json_integer_value(exp) * 1000 <= ag_now_ms())
        return 0; /* its token expired while the node was down: it would end at once, and must not resume first */
    const typeof(s->config->general) *g = &s->config->general;
    ag_outbox_t o;
    ag_outbox_init(&o, (size_t)g->resumeOutboxFrames, (size_t)g->resumeOutboxBytes);
    o.seq = o.floor = (uint64_t)json_integer_value(json_object_get(j, "floor"));
    const json_t *outbox = json_object_get(j, "outbox");
    int ret = AG_OK;
    for (size_t i = 0; ret == AG_OK && i < json_array_size(outbox); i++) {
        const json_t *it = json_array_get(outbox, i), *text = json_array_get(it, 2);
        ag_frame_t *f = ag_frame_create(json_string_value(text), json_string_length(text), 0);
        ret = f != NULL ? ag_outbox_keep(&o, (uint64_t)json_integer_value(json_array_get(it, 0)), f,
                                         json_string_value(json_array_get(it, 1)))
                        : AG_ENOMEM;
        if (f != NULL)
            ag_frame_release(f);
    }
    ag_conn_saved_t saved = {
        .id = json_string_value(json_object_get(j, "id")),
        .fingerprint = json_string_value(json_object_get(j, "fingerprint")),
        .user = json_string_value(json_object_get(j, "user")),
        .remote_ip = json_string_value(json_object_get(j, "remoteIp")),
        .token = json_string_value(json_object_get(j, "token")),
        .transport_name = json_string_value(json_object_get(j, "transport")),
        .connected_at = (uint64_t)json_integer_value(json_object_get(j, "connectedAt")),
        .left_ms = left - elapsed,
        .claims = json_object_get(j, "claims"),
        .hook_data = json_object_get(j, "data"),
    };
    ag_conn_t *c = ret == AG_OK ? ag_conn_restore(s, &saved, &o) : NULL;
    ag_outbox_dispose(&o);
    if (c == NULL) {
        ag_log(AG_LOG_WARN, "resume", saved.id, "cannot be restored");
        return 0;
    }
    /* a token that expired meanwhile ends it at the loop's first pass, as it would have without the restart */
    ag_token_watch(c);
    const json_t *rooms = json_object_get(j, "rooms");
    for (size_t i = 0; i < json_array_size(rooms); i++) {
        const json_t *r = json_array_get(rooms, i);
        const char *name = json_string_value(json_array_get(r, 0));
        uint64_t epoch = strtoull(json_string_value(json_array_get(r, 1)), NULL, 16);
        if (ag__rooms_restore(c, name, epoch, (uint64_t)json_integer_value(json_array_get(r, 2))) != AG_OK) {
            /* a connection missing one of its rooms would be a wrong resume: it goes */
            ag_log(AG_LOG_WARN, "resume", c->id, "cannot rejoin a room; not restored");
            ag_conn_away_end(c, NULL);
            return 0;
        }
    }
    return 1;
}

void ag_resume_state_load(ag_server_t *const *nodes, size_t n)
{
    ag_server_t *s = nodes[0];
    const ag_config_t *cfg = s->config;
    const char *path = cfg->general.resumeStateFile;
    if (path[0] == '\0')
        return;
    if (!ag_resume_state_on(s)) {
        ag_log(AG_LOG_INFO, "resume", NULL, "general.resumeStateFile is not used %s",
               cfg->general.resumeWindow <= 0 ? "with resume off" : "on this store (it keeps its own resume state)");
        return;
    }
    ag_resume_state_expect_t exp;
    ag_resume_state_expect(&exp, cfg, n, ag_now_ms());
    char err[320];
    char *buf = NULL;
    size_t len = 0;
    int r = read_file(path, ag_resume_state_max_bytes(&exp), &buf, &len, err, sizeof(err));
    if (r == 1) {
        ag_log(AG_LOG_INFO, "resume", NULL, "no resume state file at %s: starting clean", path);
        return;
    }
    json_t *root = r == 0 ? ag_resume_state_parse(buf, len, &exp, err, sizeof(err)) : NULL;
    free(buf);
    if (root == NULL) {
        ag_log(AG_LOG_WARN, "resume", NULL, "resume state file %s refused: %s; starting clean", path, err);
        return;
    }
    const json_t *routes = json_object_get(root, "routes");
    for (size_t i = 0; i < n; i++) {
        const char *tag = json_string_value(json_array_get(routes, i));
        if (tag != NULL && ag_cluster_adopt_tag(nodes[i], tag) != AG_OK)
            ag_log(AG_LOG_WARN, "resume", NULL, "worker %zu cannot take back its route %s: its clients resume elsewhere or not", i,
                   tag);
    }
    /* the rooms' history first, so that the memberships find their rooms' epochs as they were */
    const char *name;
    json_t *h;
    size_t nrooms = 0, nconns = 0;
    json_object_foreach(json_object_get(root, "rooms"), name, h)
    {
        const char *e = "no answer";
        s->store->ops->history_load(s->store, name, h, on_loaded, &e);
        if (e != NULL)
            ag_log(AG_LOG_WARN, "resume", NULL, "room history not restored: %s", e);
        else
            nrooms++;
    }
    const json_t *conns = json_object_get(root, "conns");
    size_t total = json_array_size(conns);
    json_t **list = total != 0 ? malloc(total * sizeof(*list)) : NULL;
    if (list != NULL) {
        for (size_t i = 0; i < total; i++)
            list[i] = json_array_get(conns, i);
        qsort(list, total, sizeof(*list), by_left);
        uint64_t now = ag_now_ms(), saved = (uint64_t)json_integer_value(json_object_get(root, "savedAt"));
        uint64_t elapsed = now > saved ? now - saved : 0;
        for (size_t i = 0; i < total; i++)
            nconns += (size_t)restore_conn(nodes[json_integer_value(json_object_get(list[i], "worker"))], list[i], elapsed);
        free(list);
    }
    ag_log(AG_LOG_INFO, "resume", NULL, "restored %zu of %zu resumable connections and the history of %zu rooms from %s", nconns,
           total, nrooms, path);
    json_decref(root);
}
