/*
 * Shared basics: error codes, logging, clocks, ids and a small string-keyed map.
 * Every module includes this; it depends on nothing but libc and the public header (its error codes).
 */
#ifndef AG_COMMON_H
#define AG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>
#include "actiongate.h"

/* The error codes (AG_OK, AG_E*) and ag_strerror() are public: include/actiongate.h. */

typedef enum { AG_LOG_DEBUG = 0, AG_LOG_INFO, AG_LOG_WARN, AG_LOG_ERROR, AG_LOG_NONE } ag_log_level_t;
extern ag_log_level_t ag_log_threshold;
/* Parses "debug", "info", "warn", "error", "none"; returns -1 when unknown. */
int ag_log_level_parse(const char *s);
/* Where and how lines are written (general.logFile, general.logFormat): path NULL or "" = stderr; json = one JSON
 * object per line {ts, level, subsystem, node, conn, msg}. Strings are copied. 0, AG_EIO (path cannot be opened for
 * appending), AG_ENOMEM. */
int ag_log_configure(const char *path, int json, const char *node_id);
/* The stream log lines go to (borrowed until the next ag_log_configure or ag_log_reopen). */
FILE *ag_log_stream(void);
/* The node id the calling thread's JSON log lines carry (a worker's), over the one ag_log_configure set. */
void ag_log_thread_node(const char *node_id);
/* Writes a whole line (its own "\n" included) to the log's stream, under the log's lock. */
void ag_log_line(const char *line);
/* Escapes in (NUL-terminated) into out (size bytes, always terminated, truncated at a whole escape) as ag_log does:
 * for a text line, or (json) for the inside of a JSON string. out needs 6 bytes per input byte to hold it all. */
void ag_log_escape(char *out, size_t size, const char *in, int json);
/* Opens the log file again (SIGHUP, after rotation); on failure the old one stays in use and AG_EIO is returned. */
int ag_log_reopen(void);
/* One line to stderr or the log file: time, level, subsystem tag, connection id (or "-"), message; control characters
 * and what a terminal could misread are escaped, so one call is one line. */
void ag_log(ag_log_level_t level, const char *subsys, const char *conn_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define AG_LOG_ENABLED(lvl) ((lvl) >= ag_log_threshold)
#define ag_debug(subsys, id, ...)                                                                                                  \
    do {                                                                                                                           \
        if (AG_LOG_ENABLED(AG_LOG_DEBUG))                                                                                          \
            ag_log(AG_LOG_DEBUG, subsys, id, __VA_ARGS__);                                                                         \
    } while (0)

/*
 * Rate-limited logging, for every line a stranger can trigger over and over (bad input, slow consumers, refusals):
 * at most AG_LOG_SITE_LINES_PER_SEC lines per second from one call site; the rest are counted, and the first line of
 * the site's next second is preceded by one "suppressed K similar lines". A site is a static ag_log_site_t, which
 * ag_log_limited() declares at the call, one per thread (each worker's loop has its own budget).
 */
#define AG_LOG_SITE_LINES_PER_SEC 10
typedef struct st_ag_log_site_t {
    uint64_t window_ms;  /* monotonic start of the current second; 0 = never used */
    uint32_t printed;    /* lines printed in that second */
    uint64_t suppressed; /* lines dropped since the last "suppressed" line */
} ag_log_site_t;
void ag_log_site(ag_log_site_t *site, ag_log_level_t level, const char *subsys, const char *conn_id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define ag_log_limited(level, subsys, id, ...)                                                                                     \
    do {                                                                                                                           \
        static __thread ag_log_site_t ag_log_site_;                                                                                \
        ag_log_site(&ag_log_site_, level, subsys, id, __VA_ARGS__);                                                                \
    } while (0)

/* Wall clock in ms since the epoch (what the protocol calls "ms"). */
uint64_t ag_now_ms(void);
/* Monotonic clock in ns, for measuring durations. */
uint64_t ag_mono_ns(void);

/* The whole file at path, NUL-terminated (owned by the caller; *len set), reading at most max bytes: NULL with errno
 * set when it cannot be read, EFBIG when it is larger than max (a device that never ends included). */
char *ag_read_file(const char *path, size_t max, size_t *len);

/* Cryptographically random bytes (getrandom); aborts if the kernel cannot provide them. */
void ag_random_bytes(void *buf, size_t n);
/* A random UUIDv4, lower-case, 36 characters plus NUL. */
void ag_uuid4(char out[37]);
/* A uniformly distributed double in [0, 1). */
double ag_random_double(void);

/* Formats a double the way JavaScript's Number#toString does (shortest round-trip), into buf (>= 32 bytes). */
void ag_format_double(double v, char buf[32]);
/* Truncates v toward zero into *out when the result fits a long long; returns AG_EINVAL (and leaves *out) for NaN,
 * infinities and anything out of range, where a plain cast is undefined behaviour. */
int ag_double_to_ll(double v, long long *out);
/* ms epoch -> "2026-11-22T03:34:31.608Z" (buf >= 25 bytes). */
void ag_iso8601(uint64_t ms, char buf[32]);

/* SipHash-c-d of data under a 128-bit key (64-bit output; the key's bytes are read as two little-endian words).
 * The map below uses SipHash-1-3; SipHash-2-4 is the reference variant. */
uint64_t ag_siphash(const uint8_t key[16], const void *data, size_t len, int crounds, int drounds);

/*
 * ag_map_t: string -> pointer, open addressing with linear probing, hashed with SipHash-1-3 under a per-process
 * random key (so clients cannot choose keys that collide). Keys are copied and owned by the map; values are borrowed.
 * Iteration order is unspecified. Not thread-safe.
 */
typedef struct st_ag_map_entry_t {
    char *key;
    void *value;
    uint32_t hash;
} ag_map_entry_t;
typedef struct st_ag_map_t {
    ag_map_entry_t *entries;
    size_t capacity; /* power of two or 0 */
    size_t size;
    size_t tombstones;
} ag_map_t;
void ag_map_init(ag_map_t *m);
void ag_map_dispose(ag_map_t *m);
void *ag_map_get(const ag_map_t *m, const char *key);
/* Inserts or replaces the value; returns 0 or AG_ENOMEM. */
int ag_map_set(ag_map_t *m, const char *key, void *value);
/* Removes the key and returns its value, or NULL. */
void *ag_map_del(ag_map_t *m, const char *key);
/* Iterate: for (size_t i = 0; ag_map_next(m, &i, &k, &v);) ... Deleting the current entry while iterating is allowed. */
int ag_map_next(const ag_map_t *m, size_t *iter, const char **key, void **value);

/*
 * ag_ptrmap_t: pointer -> pointer, open addressing with linear probing and backward-shift deletion (no tombstones, no
 * allocation per entry). For keys a client cannot choose (addresses of the node's own objects): the hash is a fixed
 * mix, not keyed. Values are borrowed; a NULL value cannot be told from a missing key. Not thread-safe.
 */
typedef struct st_ag_ptrmap_entry_t {
    const void *key;
    void *value;
} ag_ptrmap_entry_t;
typedef struct st_ag_ptrmap_t {
    ag_ptrmap_entry_t *entries;
    size_t capacity; /* power of two or 0 */
    size_t size;
} ag_ptrmap_t;
void ag_ptrmap_init(ag_ptrmap_t *m);
void ag_ptrmap_dispose(ag_ptrmap_t *m);
void *ag_ptrmap_get(const ag_ptrmap_t *m, const void *key);
/* Inserts or replaces the value (key must not be NULL); returns 0 or AG_ENOMEM. */
int ag_ptrmap_set(ag_ptrmap_t *m, const void *key, void *value);
/* Removes the key and returns its value, or NULL. */
void *ag_ptrmap_del(ag_ptrmap_t *m, const void *key);

#endif
