#ifndef AG_JSON_H
#define AG_JSON_H
/*
 * JSON on the hot path: a parser and an encoder for what clients send and receive most (small objects of strings,
 * integers, literals), producing and reading jansson values, so the rest of the code sees only json_t.
 *
 * jansson's lexer reads one byte at a time through a stream with a UTF-8 check per byte (about 190 instructions per
 * input byte for a 100-byte action message: 4 times what building the tree costs); its encoder goes through a callback
 * per piece. Here a message is scanned in place. What these functions do not take (reals, \u escapes, integers of
 * more than 18 digits, deep nesting, anything malformed) goes to jansson, so results and errors are jansson's own:
 * for every input, the value returned equals what json_loadb returns, key order included, and the bytes encoded equal
 * what json_dumpb writes with AG_JSON_FLAGS (spec/fuzz/fuzz_json.c checks both against jansson).
 */
#include <jansson.h>
#include <stddef.h>

/* json_loadb(data, len, flags, err). The fast path serves flags made of JSON_DECODE_ANY, JSON_ALLOW_NUL and
 * JSON_REJECT_DUPLICATES; any other flag goes to jansson directly. Returns a new reference or NULL (err filled). */
json_t *ag_json_loadb(const char *data, size_t len, size_t flags, json_error_t *err);

/* The fast parser alone: a new reference, or NULL when it does not take the input (jansson would then decide,
 * possibly accepting it). Takes any value at top level; duplicate keys: the last wins, as in jansson. */
json_t *ag_json_parse_fast(const char *data, size_t len);

/* Encodes v as json_dumpb(v, ..., AG_JSON_FLAGS) would: into buf when it fits in size, and returns the length the
 * encoding needs (so a result over size means: call again with a buffer that large), or 0 on error (invalid UTF-8 in
 * a string, a cycle: whatever jansson refuses). */
size_t ag_json_dumpb(const json_t *v, char *buf, size_t size);

#endif
