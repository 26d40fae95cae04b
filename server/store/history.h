/*
 * ag_store_hist_t: one room's history for resume (store.h, history_publish / history_since), the ring both memory
 * stores keep per room (memory.c on one loop, shared.c under its lock). It knows nothing of rooms, channels or locks:
 * the store around it decides when it is made, touched and freed.
 *
 * Lines floor+1 .. last are kept, oldest at head, within the bounds the store passes in (lines: the ring's capacity;
 * bytes and age: per call). The epoch names this life of the room's history (16 hex digits, random at creation).
 */
#ifndef AG_STORE_HISTORY_H
#define AG_STORE_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct st_ag_store_hline_t {
    uint64_t offset, at_ms; /* at_ms: wall-clock ms it was appended */
    size_t len;
    char *data; /* owned, NUL-terminated */
} ag_store_hline_t;

typedef struct st_ag_store_hist_t {
    char epoch[17];
    uint64_t last, floor;
    ag_store_hline_t *ring;
    size_t cap, head, n, bytes;
} ag_store_hist_t;

/* An empty history of at most cap lines with a new random epoch; NULL when out of memory (or cap 0). */
ag_store_hist_t *ag_store_hist_create(size_t cap);
/* Frees h and its lines (NULL is fine). */
void ag_store_hist_free(ag_store_hist_t *h);
/* Drops the lines older than max_age_ms (0: no age bound) at wall-clock now. */
void ag_store_hist_expire(ag_store_hist_t *h, uint64_t max_age_ms, uint64_t now);
/* Appends line (malloc'ed, len bytes and a NUL; the history takes it) under the next offset, after dropping what the
 * line count, max_bytes and the age bound require; returns that offset. With line NULL (a line over the byte bound, or
 * no memory for its copy) every kept line goes and the offset still moves, so that a resume across it fails. */
uint64_t ag_store_hist_append(ag_store_hist_t *h, char *line, size_t len, size_t max_bytes, uint64_t max_age_ms, uint64_t now);
/* The i-th kept line, oldest first (i < h->n); borrowed while h is not touched. */
const ag_store_hline_t *ag_store_hist_line(const ag_store_hist_t *h, size_t i);
/* 1 when every line after `after` is still kept (a replay from it loses nothing), else 0. */
int ag_store_hist_has_after(const ag_store_hist_t *h, uint64_t after);

/*
 * The history as data, for the resume state file (README "Resume", graceful restart):
 *   {"epoch":"<16 hex>","last":n,"floor":n,"lines":[[offset,at_ms,"text"],...]}
 * dump returns a new value (NULL when out of memory). load makes a history of at most cap lines from such a value
 * (borrowed), or NULL with *err set when it is not exactly that shape: offsets floor+1 .. last without a gap, at most
 * cap lines and max_bytes bytes, text without NUL; nothing of a refused value is kept.
 */
json_t *ag_store_hist_dump(const ag_store_hist_t *h);
ag_store_hist_t *ag_store_hist_load(const json_t *v, size_t cap, size_t max_bytes, const char **err);

#endif
