/*
 * ag_bucket_t: a token bucket (implemented in server/limit.c), kept apart so that a connection can hold one without
 * including the node's headers.
 */
#ifndef AG_BUCKET_H
#define AG_BUCKET_H

#include <stdint.h>

/* A token bucket: `burst` tokens at most, refilled at `rate` per second. */
typedef struct st_ag_bucket_t {
    double tokens;
    uint64_t at_ms;   /* monotonic ms of the last take; 0 = never used (full) */
    uint32_t refused; /* refusals since the bucket was last full */
} ag_bucket_t;

typedef enum {
    AG_BUCKET_OK = 0,
    AG_BUCKET_REFUSED, /* no token: refuse this one */
    AG_BUCKET_ABUSE    /* refused, and `burst` refusals came without the bucket filling up again: sustained abuse */
} ag_bucket_result_t;

/* Takes one token at now_ms (monotonic). rate <= 0 means unlimited; burst below 1 counts as 1. */
ag_bucket_result_t ag_bucket_take(ag_bucket_t *b, uint64_t now_ms, double rate, int burst);

#endif
