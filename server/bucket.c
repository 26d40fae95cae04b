#include "bucket.h"

ag_bucket_result_t ag_bucket_take(ag_bucket_t *b, uint64_t now_ms, double rate, int burst)
{
    if (rate <= 0)
        return AG_BUCKET_OK;
    double cap = burst < 1 ? 1 : burst;
    if (b->at_ms == 0) {
        b->tokens = cap;
    } else if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * rate / 1000.0;
        if (b->tokens > cap)
            b->tokens = cap;
    }
    b->at_ms = now_ms != 0 ? now_ms : 1;
    if (b->tokens >= cap)
        b->refused = 0;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return AG_BUCKET_OK;
    }
    if (b->refused < UINT32_MAX)
        b->refused++;
    return b->refused >= (uint32_t)cap ? AG_BUCKET_ABUSE : AG_BUCKET_REFUSED;
}
