/*
 * The order of one room's lines on this node (README "Cluster", "Lines a node missed").
 *
 * With room history on, every line a node publishes carries the room's next offset (store.h history_publish), and Redis
 * pub/sub hands a node the lines in that order, but only while its subscription lives: a line published while the
 * subscriber connection is lost and made again never reaches the node. The offsets show such a gap. This bookkeeping
 * decides, line by line, whether a line goes out now or waits while the lines before it are fetched from the room's
 * history, and after the fetch puts the fetched lines and the waiting ones back in offset order. It holds no
 * reference to the room or its members: the caller delivers.
 */
#ifndef AG_LINE_ORDER_H
#define AG_LINE_ORDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A line kept while a fetch is in flight, and what ag_line_order_settle hands back. payload: the channel's payload
 * after its "#<offset>:" prefix (type byte first), not NUL-terminated. */
typedef struct st_ag_line_t {
    struct st_ag_line_t *next;
    uint64_t offset;
    size_t len;
    char payload[];
} ag_line_t;

/* What one room keeps. Zeroed is a fresh room: no line seen yet. */
typedef struct st_ag_line_order_t {
    uint64_t last;    /* the offset of the last line given out here; 0: none yet */
    uint64_t fetch;   /* nonzero while a fetch of the lines after `last` is in flight: its number */
    uint64_t fetches; /* fetches started, which numbers them: an answer to a fetch given up is known by its number */
    /* the offsets (lo, hi] the last fetch found: pub/sub may still hand those lines over, late (the fetch's answer and
     * the subscription come on different connections, read in either order) */
    uint64_t echo_lo, echo_hi;
    ag_line_t *held, *held_tail;
    size_t held_n, held_bytes;
} ag_line_order_t;

/* Bounds of what waits for one fetch; past them the fetch is given up and the gap counted as missed. */
#define AG_LINE_ORDER_MAX_HELD 4096
#define AG_LINE_ORDER_MAX_BYTES (4u << 20)

typedef enum {
    AG_LINE_NOW,   /* give it out now (last moved to its offset) */
    AG_LINE_DUP,   /* given out already, from the history: drop it */
    AG_LINE_HELD,  /* kept until the fetch in flight settles */
    AG_LINE_FETCH, /* kept; a gap is before it: fetch the lines after o->last (o->fetch numbers that fetch) */
    AG_LINE_FULL,  /* not kept: the fetch in flight holds all it may; settle it now as if it found nothing, then take the
                    * line again */
} ag_line_verdict_t;

/* One line with its offset (payload copied when kept). */
ag_line_verdict_t ag_line_order_take(ag_line_order_t *o, uint64_t offset, const char *payload, size_t len);
/* Starts a fetch of the lines after o->last when none is in flight and a line was seen (the subscription was made again:
 * lines may have been missed with no later line to show it). 1 when the caller must fetch, 0 when not. */
int ag_line_order_begin(ag_line_order_t *o);
/* The fetch answered. items: the history's [[offset, "payload"], ...] after o->last (borrowed), or NULL when the lines are
 * gone or could not be read. Returns the lines to give out, in offset order, each once (the caller frees them with
 * ag_line_list_free), and moves o->last past them; *missed counts the offsets that were skipped over. Nothing is held
 * afterwards. */
ag_line_t *ag_line_order_settle(ag_line_order_t *o, const json_t *items, uint64_t *missed);
/* Frees what o holds (the room went). */
void ag_line_order_dispose(ag_line_order_t *o);
void ag_line_list_free(ag_line_t *l);

#endif
