#include "batch_send.h"

#include "actiongate.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#ifdef AG_HAVE_URING

#include <liburing.h>

struct st_ag_batch_send_t {
    struct io_uring ring;
    unsigned entries, queued;
};

ag_batch_send_t *ag_batch_send_create(unsigned entries)
{
    if (entries == 0 || entries > 4096) {
        errno = EINVAL;
        return NULL;
    }
    ag_batch_send_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->entries = entries;
    /* One thread submits and reaps, and completions are only looked at inside the submit: the kernel may skip the
     * cross-thread wake-ups; one bad entry does not stop the rest of a submit. Older kernels refuse these flags, so try without
     * them before giving up. */
    static const unsigned flag_sets[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
                                         IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, 0};
    int r = -ENOSYS;
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++)
        if ((r = io_uring_queue_init(entries, &b->ring, flag_sets[i])) != -EINVAL)
            break;
    if (r < 0) {
        free(b);
        errno = -r;
        return NULL;
    }
    return b;
}

void ag_batch_send_destroy(ag_batch_send_t *b)
{
    if (b == NULL)
        return;
    io_uring_queue_exit(&b->ring);
    free(b);
}

unsigned ag_batch_send_room(const ag_batch_send_t *b)
{
    return b->entries - b->queued;
}

int ag_batch_send_add(ag_batch_send_t *b, int fd, const void *data, size_t len)
{
    struct io_uring_sqe *sqe;
    if (b->queued == b->entries || (sqe = io_uring_get_sqe(&b->ring)) == NULL)
        return AG_EBUSY;
    /* MSG_DONTWAIT: a full socket answers -EAGAIN now instead of the kernel polling it on our behalf, which would leave
     * the send (and the caller's buffer) in flight after the submit. MSG_NOSIGNAL: a closed peer is an error code. */
    io_uring_prep_send(sqe, fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, b->queued);
    return (int)b->queued++;
}

int ag_batch_send_submit(ag_batch_send_t *b, ssize_t *results)
{
    unsigned n = b->queued, got = 0;
    for (unsigned i = 0; i < n; i++)
        results[i] = -EAGAIN;
    /* Every queued send must be taken and finished before the caller's buffers go back: MSG_DONTWAIT sends finish
     * inside the submit, so the wait does not sleep. A submit the kernel refuses for want of memory (-EAGAIN, -EBUSY
     * while completions are unread) is tried again once the completions are read. */
    while (got < n) {
        int r = io_uring_submit_and_wait(&b->ring, n - got);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&b->ring, head, cqe)
        {
            uint64_t i = io_uring_cqe_get_data64(cqe);
            if (i < n) {
                results[i] = cqe->res;
                got++;
            }
            seen++;
        }
        io_uring_cq_advance(&b->ring, seen);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            abort(); /* the ring refuses its own entries with sends in flight: no buffer could be trusted after this */
    }
    b->queued = 0;
    return (int)n;
}

#else /* no liburing at build time: nothing is batched */

ag_batch_send_t *ag_batch_send_create(unsigned entries)
{
    (void)entries;
    errno = ENOSYS;
    return NULL;
}

void ag_batch_send_destroy(ag_batch_send_t *b)
{
    (void)b;
}

unsigned ag_batch_send_room(const ag_batch_send_t *b)
{
    (void)b;
    return 0;
}

int ag_batch_send_add(ag_batch_send_t *b, int fd, const void *data, size_t len)
{
    (void)b, (void)fd, (void)data, (void)len;
    return AG_EBUSY;
}

int ag_batch_send_submit(ag_batch_send_t *b, ssize_t *results)
{
    (void)b, (void)results;
    return 0;
}

#endif
