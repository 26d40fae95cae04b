/*
 * The resume state file of a graceful restart (README "Resume", "Graceful restart"; general.resumeStateFile).
 *
 * A node on the memory store that stops (SIGTERM/SIGINT) keeps its resumable connections out of the drain until the
 * requests they sent have been answered (within the stop's deadline), then writes down, at one instant of its loop,
 * what each needs to come back: id, token, numbered frames with their messageIds, rooms with the epoch and offset of
 * their history, and what is left of its window; right after, their carriers are closed (reconnect allowed). Once every
 * loop of the process has stopped, the rooms' history is added and the file is written (a temporary file renamed over
 * it, mode 0600: it holds the connections' tokens). The next start reads it, deletes it, checks all of it and only
 * then makes those connections away connections again, with the same room history (epochs, offsets). A file that is
 * missing, damaged, over its bound, stale or written by another node or configuration is refused whole with one log
 * line: the node starts clean.
 *
 * Connections live on their worker's loop: each worker collects its own on its loop; saving and loading run on the
 * main thread while no loop runs (after the last stopped, before the first starts).
 */
#ifndef AG_RESUME_STATE_H
#define AG_RESUME_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "config.h"
#include "conn.h"

/* 1 when s saves its resumable connections at a stop: a file is configured, resume is on and the store can hand its
 * rooms' history over (the memory stores; Redis keeps its own). */
int ag_resume_state_on(const ag_server_t *s);
/* 1 when c, on a stopping node that saves, is kept out of the drain to be saved. */
int ag_resume_state_keeps(const ag_conn_t *c);
/* 1 while a connection kept for saving still has requests running (or rooms being joined). */
int ag_resume_state_busy(ag_server_t *s);
/* On s's loop, at the end of its drain: writes down every kept connection (into s->resume_saved), then closes those
 * that still have a carrier with "going away" (reconnect allowed). Nothing is sent to them after this instant. */
void ag_resume_state_collect(ag_server_t *s);
/* After every loop stopped: writes the file from the nodes' collections and nodes[0]'s store (the rooms' history).
 * Logs what it did, or why it could not. */
void ag_resume_state_save(ag_server_t *const *nodes, size_t n);
/* Before any loop runs: reads the file, deletes it, and restores its connections to their workers' nodes and its
 * history to the store, or refuses it whole (one log line). */
void ag_resume_state_load(ag_server_t *const *nodes, size_t n);

/* What a file must match to be loaded (leaf part: unit tests and fuzzing call the parser directly). */
typedef struct st_ag_resume_state_expect_t {
    const char *node;   /* general.id ("" when the node draws a random one) */
    char config[256];   /* ag_resume_state_config_id of the loading node's configuration */
    uint64_t now_ms;    /* wall clock */
    uint64_t window_ms; /* general.resumeWindow */
    size_t workers;
    size_t max_conns; /* per worker (general.resumeMaxAway) */
    size_t max_rooms, max_rooms_per_conn, room_name_max;
    size_t outbox_frames, outbox_bytes, history_lines, history_bytes;
} ag_resume_state_expect_t;
/* The expectations of a node with configuration cfg and `workers` workers, at wall-clock now. */
void ag_resume_state_expect(ag_resume_state_expect_t *exp, const ag_config_t *cfg, size_t workers, uint64_t now_ms);
/* What of a configuration a state file must have been written under (port, workers, the resume and room bounds): a
 * short text into buf. */
void ag_resume_state_config_id(const ag_config_t *cfg, size_t workers, char *buf, size_t size);
/* The largest file a node with these expectations reads. */
uint64_t ag_resume_state_max_bytes(const ag_resume_state_expect_t *exp);
/* Checks that buf (len bytes, borrowed) is, whole, a state file exp allows: returns its parsed value (the caller owns
 * it), or NULL with one line into err. Nothing in it is trusted before this said yes. */
json_t *ag_resume_state_parse(const char *buf, size_t len, const ag_resume_state_expect_t *exp, char *err, size_t errlen);

#endif
