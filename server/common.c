#include "common.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

ag_log_level_t ag_log_threshold = AG_LOG_INFO;

const char *ag_strerror(int err)
{
    switch (err) {
    case AG_OK:
        return "ok";
    case AG_ENOMEM:
        return "out of memory";
    case AG_EINVAL:
        return "invalid argument";
    case AG_ENOENT:
        return "not found";
    case AG_EEXIST:
        return "already exists";
    case AG_EIO:
        return "I/O error";
    case AG_ECONFIG:
        return "bad configuration";
    case AG_ETOOBIG:
        return "too big";
    case AG_EBUSY:
        return "busy";
    case AG_ECLOSED:
        return "closed";
    }
    return "unknown error";
}

int ag_log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error", "none"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Length of the UTF-8 sequence at p that may go to a log as it is, or 0: not UTF-8, a C1 control, a line or paragraph
 * separator, or a bidirectional override (which can make a terminal show a line other than the one written). */
static size_t log_safe_utf8(const unsigned char *p)
{
    size_t len;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
        return 0;
    return len;
}

/* Log text comes from clients too (a parser's error quotes the bad input): what could end the line, move the cursor
 * or pass for something else is written as an escape, so one call is one line, as written. Valid UTF-8 that
 * log_safe_utf8 accepts is copied; any other byte is escaped. Text lines: \\ \n \r \t or \xHH, the backslash
 * included. JSON (a string body, so a line is one valid JSON object): \" \\ \u00HH, and U+FFFD for a byte that is
 * not UTF-8. Writes one byte's escape into esc; returns its length. */
static size_t escape_byte(unsigned char c, int json, char esc[8])
{
    static const char hex[] = "0123456789abcdef";
    if (json) {
        if (c >= 0x80) {
            memcpy(esc, "\\ufffd", 6);
            return 6;
        }
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            return 2;
        }
        if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            return 6;
        }
        esc[0] = (char)c;
        return 1;
    }
    if (c >= 0x20 && c < 0x7f && c != '\\') {
        esc[0] = (char)c;
        return 1;
    }
    const char named = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
    esc[0] = '\\';
    if (named != 0) {
        esc[1] = named;
        return 2;
    }
    esc[1] = 'x';
    esc[2] = hex[c >> 4];
    esc[3] = hex[c & 15];
    return 4;
}

void ag_log_escape(char *out, size_t size, const char *in, int json)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    while (*p != '\0') {
        size_t take = *p >= 0x80 ? log_safe_utf8(p) : 0;
        if (take != 0) {
            if (o + take >= size)
                break;
            memcpy(out + o, p, take);
            o += take;
            p += take;
            continue;
        }
        char esc[8];
        size_t n = escape_byte(*p, json, esc);
        if (o + n >= size)
            break;
        memcpy(out + o, esc, n);
        o += n;
        p++;
    }
    out[o] = '\0';
}

/* Where lines go: stderr, or general.logFile (opened again on SIGHUP, so that a rotated file is let go). Every worker
 * of the process logs (general.workers): the lock keeps each line whole and the stream steady while it is reopened. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_fp;
static char *log_path;
static int log_json;
static char log_node[64];
/* a worker's thread logs under its own node id (general.workers) */
static __thread char thread_node[64];

FILE *ag_log_stream(void)
{
    pthread_mutex_lock(&log_lock);
    FILE *fp = log_fp != NULL ? log_fp : stderr;
    pthread_mutex_unlock(&log_lock);
    return fp;
}

void ag_log_thread_node(const char *node_id)
{
    snprintf(thread_node, sizeof(thread_node), "%s", node_id);
}

void ag_log_line(const char *line)
{
    pthread_mutex_lock(&log_lock);
    FILE *out = log_fp != NULL ? log_fp : stderr;
    fputs(line, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

int ag_log_configure(const char *path, int json, const char *node_id)
{
    log_json = json;
    snprintf(log_node, sizeof(log_node), "%s", node_id != NULL ? node_id : "");
    free(log_path);
    log_path = path != NULL && path[0] != '\0' ? strdup(path) : NULL;
    if (path != NULL && path[0] != '\0' && log_path == NULL)
        return AG_ENOMEM;
    return ag_log_reopen();
}

int ag_log_reopen(void)
{
    pthread_mutex_lock(&log_lock);
    int ret = 0;
    if (log_path == NULL) {
        if (log_fp != NULL)
            fclose(log_fp);
        log_fp = NULL;
    } else {
        FILE *fp = fopen(log_path, "ae");
        if (fp == NULL) {
            ret = AG_EIO; /* the old file stays in use */
        } else {
            setvbuf(fp, NULL, _IOLBF, 0);
            if (log_fp != NULL)
                fclose(log_fp);
            log_fp = fp;
        }
    }
    pthread_mutex_unlock(&log_lock);
    return ret;
}

void ag_log(ag_log_level_t level, const char *subsys, const char *conn_id, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < ag_log_threshold || level >= AG_LOG_NONE)
        return;
    char ts[32], msg[1024], safe[6 * sizeof(msg)], id[6 * 64];
    ag_iso8601(ag_now_ms(), ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    FILE *out = log_fp != NULL ? log_fp : stderr;
    if (log_json) {
        char node[6 * sizeof(log_node)];
        ag_log_escape(safe, sizeof(safe), msg, 1);
        ag_log_escape(node, sizeof(node), thread_node[0] != '\0' ? thread_node : log_node, 1);
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"subsystem\":\"%s\",\"node\":\"%s\",\"conn\":", ts, names[level], subsys,
                node);
        if (conn_id != NULL) {
            ag_log_escape(id, sizeof(id), conn_id, 1);
            fprintf(out, "\"%s\",\"msg\":\"%s\"}\n", id, safe);
        } else {
            fprintf(out, "null,\"msg\":\"%s\"}\n", safe);
        }
    } else {
        ag_log_escape(safe, sizeof(safe), msg, 0);
        ag_log_escape(id, sizeof(id), conn_id != NULL ? conn_id : "-", 0);
        fprintf(out, "%s %-5s [%s] %s %s\n", ts, names[level], subsys, id, safe);
    }
    pthread_mutex_unlock(&log_lock);
}

void ag_log_site(ag_log_site_t *site, ag_log_level_t level, const char *subsys, const char *conn_id, const char *fmt, ...)
{
    if (level < ag_log_threshold || level >= AG_LOG_NONE)
        return;
    uint64_t now = ag_mono_ns() / 1000000;
    if (site->window_ms == 0 || now - site->window_ms >= 1000) {
        if (site->suppressed != 0)
            ag_log(level, subsys, NULL, "suppressed %llu similar lines", (unsigned long long)site->suppressed);
        site->window_ms = now != 0 ? now : 1;
        site->printed = 0;
        site->suppressed = 0;
    }
    if (site->printed >= AG_LOG_SITE_LINES_PER_SEC) {
        site->suppressed++;
        return;
    }
    site->printed++;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ag_log(level, subsys, conn_id, "%s", msg);
}

uint64_t ag_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *ag_read_file(const char *path, size_t max, size_t *len)
{
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int err = 0;
    /* reads to the end, not to a size stat gave: one byte over the bound tells a file at it from a larger one */
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap == 0 ? 4096 : cap * 2;
            if (ncap > max + 2) /* room for max + 1 bytes and the NUL */
                ncap = max + 2;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (nb == NULL) {
                err = ncap > cap ? ENOMEM : EFBIG;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (n > max) {
            err = EFBIG;
            break;
        }
        if (got == 0) {
            if (ferror(fp))
                err = errno != 0 ? errno : EIO;
            break;
        }
    }
    fclose(fp);
    if (err != 0) {
        free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

uint64_t ag_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ag_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

void ag_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    ag_random_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}

double ag_random_double(void)
{
    uint64_t r;
    ag_random_bytes(&r, sizeof(r));
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

void ag_format_double(double v, char buf[32])
{
    if (isnan(v) || isinf(v)) {
        strcpy(buf, "null");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e21) {
        snprintf(buf, 32, "%.0f", v);
        return;
    }
    /* The shortest precision that reads back to the same double, as JavaScript prints numbers. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
}

int ag_double_to_ll(double v, long long *out)
{
    /* (double)LLONG_MIN is -2^63 exactly and its negation, 2^63, is the first value too large; NaN fails both. */
    if (!(v >= (double)LLONG_MIN && v < -(double)LLONG_MIN))
        return AG_EINVAL;
    *out = (long long)v;
    return 0;
}

void ag_iso8601(uint64_t ms, char buf[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* --- SipHash --- */

static inline uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

/* One SipRound: two ARX half-rounds over the four state words. */
#define SIP_ROUND(v0, v1, v2, v3)                                                                                                  \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = rotl64(v1, 13) ^ v0;                                                                                                  \
        v0 = rotl64(v0, 32);                                                                                                       \
        v2 += v3;                                                                                                                  \
        v3 = rotl64(v3, 16) ^ v2;                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = rotl64(v3, 21) ^ v0;                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = rotl64(v1, 17) ^ v2;                                                                                                  \
        v2 = rotl64(v2, 32);                                                                                                       \
    } while (0)

/* Always inlined, so that callers with constant round counts (the map's 1-3) get the rounds unrolled. */
static inline __attribute__((always_inline)) uint64_t siphash(const uint8_t key[16], const void *data, size_t len, int crounds,
                                                              int drounds)
{
    const unsigned char *p = data;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    /* the initial state is the key xored with the ASCII of "somepseudorandomlygeneratedbytes" */
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t whole = len & ~(size_t)7;
    for (size_t off = 0; off < whole; off += 8) {
        uint64_t m = load_le64(p + off);
        v3 ^= m;
        for (int r = 0; r < crounds; r++)
            SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    /* the last word: the 0-7 remaining bytes, and the length's low byte in the top byte */
    uint64_t m = (uint64_t)(len & 0xff) << 56;
    for (size_t i = len - whole; i > 0; i--)
        m |= (uint64_t)p[whole + i - 1] << (8 * (i - 1));
    v3 ^= m;
    for (int r = 0; r < crounds; r++)
        SIP_ROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    for (int r = 0; r < drounds; r++)
        SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t ag_siphash(const uint8_t key[16], const void *data, size_t len, int crounds, int drounds)
{
    return siphash(key, data, len, crounds, drounds);
}

/* --- ag_map_t --- */

/* Keys often come from clients (room names, channels): an unkeyed hash would let them choose colliding keys and turn
 * every probe into a scan. The key is drawn from getrandom once per process, at the first hash. */
static uint8_t map_key[16];
static pthread_once_t map_keyed = PTHREAD_ONCE_INIT;

static void map_key_draw(void)
{
    ag_random_bytes(map_key, sizeof(map_key));
}

static uint32_t map_hash(const char *s)
{
    /* a zeroed map (static storage) needs no ag_map_init, so the key is drawn here, once for every thread */
    pthread_once(&map_keyed, map_key_draw);
    return (uint32_t)siphash(map_key, s, strlen(s), 1, 3);
}

#define MAP_TOMBSTONE ((char *)1)

void ag_map_init(ag_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void ag_map_dispose(ag_map_t *m)
{
    for (size_t i = 0; i < m->capacity; i++)
        if (m->entries[i].key != NULL && m->entries[i].key != MAP_TOMBSTONE)
            free(m->entries[i].key);
    free(m->entries);
    memset(m, 0, sizeof(*m));
}

static ag_map_entry_t *map_find(const ag_map_t *m, const char *key, uint32_t h)
{
    if (m->capacity == 0)
        return NULL;
    size_t mask = m->capacity - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ag_map_entry_t *e = &m->entries[i];
        if (e->key == NULL)
            return NULL;
        if (e->key != MAP_TOMBSTONE && e->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
}

void *ag_map_get(const ag_map_t *m, const char *key)
{
    ag_map_entry_t *e = map_find(m, key, map_hash(key));
    return e != NULL ? e->value : NULL;
}

static int map_grow(ag_map_t *m)
{
    size_t ncap = m->capacity == 0 ? 16 : (m->size * 4 > m->capacity ? m->capacity * 2 : m->capacity);
    ag_map_entry_t *n = calloc(ncap, sizeof(*n));
    if (n == NULL)
        return AG_ENOMEM;
    for (size_t i = 0; i < m->capacity; i++) {
        ag_map_entry_t *e = &m->entries[i];
        if (e->key == NULL || e->key == MAP_TOMBSTONE)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (n[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = *e;
    }
    free(m->entries);
    m->entries = n;
    m->capacity = ncap;
    m->tombstones = 0;
    return AG_OK;
}

int ag_map_set(ag_map_t *m, const char *key, void *value)
{
    uint32_t h = map_hash(key);
    ag_map_entry_t *e = map_find(m, key, h);
    if (e != NULL) {
        e->value = value;
        return AG_OK;
    }
    if ((m->size + m->tombstones + 1) * 4 > m->capacity * 3 && map_grow(m) != AG_OK)
        return AG_ENOMEM;
    char *k = strdup(key);
    if (k == NULL)
        return AG_ENOMEM;
    size_t mask = m->capacity - 1;
    size_t i = h & mask;
    while (m->entries[i].key != NULL && m->entries[i].key != MAP_TOMBSTONE)
        i = (i + 1) & mask;
    if (m->entries[i].key == MAP_TOMBSTONE)
        m->tombstones--;
    m->entries[i] = (ag_map_entry_t){k, value, h};
    m->size++;
    return AG_OK;
}

void *ag_map_del(ag_map_t *m, const char *key)
{
    ag_map_entry_t *e = map_find(m, key, map_hash(key));
    if (e == NULL)
        return NULL;
    void *v = e->value;
    free(e->key);
    e->key = MAP_TOMBSTONE;
    e->value = NULL;
    m->size--;
    m->tombstones++;
    return v;
}

int ag_map_next(const ag_map_t *m, size_t *iter, const char **key, void **value)
{
    for (; *iter < m->capacity; ++*iter) {
        ag_map_entry_t *e = &m->entries[*iter];
        if (e->key != NULL && e->key != MAP_TOMBSTONE) {
            *key = e->key;
            *value = e->value;
            ++*iter;
            return 1;
        }
    }
    return 0;
}

/* --- ag_ptrmap_t --- */

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

void ag_ptrmap_init(ag_ptrmap_t *m)
{
    memset(m, 0, sizeof(*m));
}

void ag_ptrmap_dispose(ag_ptrmap_t *m)
{
    free(m->entries);
    memset(m, 0, sizeof(*m));
}

static ag_ptrmap_entry_t *ptrmap_find(const ag_ptrmap_t *m, const void *key)
{
    if (m->capacity == 0)
        return NULL;
    size_t mask = m->capacity - 1;
    for (size_t i = ptr_hash(key) & mask;; i = (i + 1) & mask) {
        ag_ptrmap_entry_t *e = &m->entries[i];
        if (e->key == key)
            return e;
        if (e->key == NULL)
            return NULL;
    }
}

void *ag_ptrmap_get(const ag_ptrmap_t *m, const void *key)
{
    ag_ptrmap_entry_t *e = ptrmap_find(m, key);
    return e != NULL ? e->value : NULL;
}

static void ptrmap_place(ag_ptrmap_entry_t *entries, size_t capacity, const void *key, void *value)
{
    size_t mask = capacity - 1, i = ptr_hash(key) & mask;
    while (entries[i].key != NULL)
        i = (i + 1) & mask;
    entries[i] = (ag_ptrmap_entry_t){key, value};
}

int ag_ptrmap_set(ag_ptrmap_t *m, const void *key, void *value)
{
    ag_ptrmap_entry_t *e = ptrmap_find(m, key);
    if (e != NULL) {
        e->value = value;
        return AG_OK;
    }
    if ((m->size + 1) * 4 > m->capacity * 3) { /* at most 3/4 full */
        size_t ncap = m->capacity == 0 ? 16 : m->capacity * 2;
        ag_ptrmap_entry_t *n = calloc(ncap, sizeof(*n));
        if (n == NULL)
            return AG_ENOMEM;
        for (size_t i = 0; i < m->capacity; i++)
            if (m->entries[i].key != NULL)
                ptrmap_place(n, ncap, m->entries[i].key, m->entries[i].value);
        free(m->entries);
        m->entries = n;
        m->capacity = ncap;
    }
    ptrmap_place(m->entries, m->capacity, key, value);
    m->size++;
    return AG_OK;
}

void *ag_ptrmap_del(ag_ptrmap_t *m, const void *key)
{
    ag_ptrmap_entry_t *e = ptrmap_find(m, key);
    if (e == NULL)
        return NULL;
    void *v = e->value;
    size_t mask = m->capacity - 1, hole = (size_t)(e - m->entries);
    /* backward shift: pull later entries of the probe run into the hole when their home slot allows it */
    for (size_t j = (hole + 1) & mask; m->entries[j].key != NULL; j = (j + 1) & mask) {
        size_t home = ptr_hash(m->entries[j].key) & mask;
        /* the entry at j may move to the hole unless its home lies cyclically in (hole, j] */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->entries[hole] = m->entries[j];
            hole = j;
        }
    }
    m->entries[hole] = (ag_ptrmap_entry_t){NULL, NULL};
    m->size--;
    return v;
}
