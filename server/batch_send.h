/*
 * ag_batch_send_t: many nonblocking sends to different sockets in one system call (io_uring), every one of them
 * finished before the call returns.
 *
 * A room fan-out writes the same line to hundreds of sockets in one loop iteration; each write is a syscall of its own
 * whose entry and exit cost as much as a small loopback send. Here the sends are queued, submitted together and
 * waited for together. Each send is MSG_DONTWAIT: a socket whose buffer is full answers at once with what it took (a
 * short count) or -EAGAIN, never later, so nothing stays in flight and buffers are only borrowed for the submit call.
 *
 * A leaf: it knows no event loop and no socket library; the caller decides what to do with a short or failed send
 * (transports/ws.c hands the rest to h2o's normal write path).
 */
#ifndef AG_BATCH_SEND_H
#define AG_BATCH_SEND_H

#include <stddef.h>
#include <sys/types.h>

typedef struct st_ag_batch_send_t ag_batch_send_t;

/* Sets up a batch of at most `entries` sends per submit (1..4096). NULL when the kernel (or the build, without
 * liburing) does not allow it: the caller writes each socket as before. Creating it ties it to the calling thread. */
ag_batch_send_t *ag_batch_send_create(unsigned entries);
void ag_batch_send_destroy(ag_batch_send_t *b);
/* Sends the next submit can take before it is full. */
unsigned ag_batch_send_room(const ag_batch_send_t *b);
/* Queues one send of len bytes at data to fd; data is borrowed until ag_batch_send_submit returns. Returns the send's
 * index in the results of the next submit (0, 1, ...), or AG_EBUSY when the batch is full. */
int ag_batch_send_add(ag_batch_send_t *b, int fd, const void *data, size_t len);
/* Submits every queued send in one system call and waits until each has finished. results[i] (one per queued send)
 * is the bytes the i-th send wrote (possibly fewer than asked) or a negative errno (-EAGAIN: the socket took nothing).
 * Returns the number of sends; the batch is empty again and none of them is in flight. */
int ag_batch_send_submit(ag_batch_send_t *b, ssize_t *results);

#endif
