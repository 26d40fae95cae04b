#include "common.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
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

void ag_log(ag_log_level_t level, const char *subsys, const char *conn_id, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < ag_log_threshold || level >= AG_LOG_NONE)
        return;
    char ts[32], msg[1024];
    ag_iso8601(ag_now_ms(), ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s [%s] %s %s\n", ts, names[level], subsys, conn_id != NULL ? conn_id : "-", msg);
}

uint64_t ag_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

/* --- ag_map_t --- */

static uint32_t map_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
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
