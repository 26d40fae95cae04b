/* server/batch_send.c: many sends in one io_uring submit, on real sockets (socketpairs and loopback TCP): whole sends,
 * short sends to a socket whose buffer fills, -EAGAIN from a full one, errors from closed peers and bad descriptors,
 * and nothing left in flight once the submit returns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "actiongate.h"
#include "batch_send.h"

static ag_batch_send_t *make(unsigned entries)
{
    ag_batch_send_t *b = ag_batch_send_create(entries);
    if (b == NULL && (errno == ENOSYS || errno == EPERM))
        skip(); /* no io_uring here (a kernel or sandbox without it, or a build without liburing) */
    assert_non_null(b);
    return b;
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* Reads exactly len bytes from fd (the sender is done, so a short read means they are missing). */
static void expect_bytes(int fd, const void *want, size_t len)
{
    char *got = malloc(len + 1);
    size_t have = 0;
    assert_non_null(got);
    while (have < len) {
        ssize_t r = recv(fd, got + have, len - have, MSG_DONTWAIT);
        if (r <= 0)
            fail_msg("got %zu of %zu bytes (%s)", have, len, r == 0 ? "eof" : strerror(errno));
        have += (size_t)r;
    }
    assert_memory_equal(got, want, len);
    assert_int_equal(recv(fd, got, 1, MSG_DONTWAIT), -1); /* and nothing more */
    free(got);
}

static void test_create(void **state)
{
    assert_null(ag_batch_send_create(0));
    assert_int_equal(errno, EINVAL);
    assert_null(ag_batch_send_create(4097));
    ag_batch_send_destroy(NULL);
    ag_batch_send_t *b = make(4);
    assert_int_equal(ag_batch_send_room(b), 4);
    ssize_t res[4];
    assert_int_equal(ag_batch_send_submit(b, res), 0); /* an empty batch is no call */
    ag_batch_send_destroy(b);
}

static void test_whole(void **state)
{
    enum { N = 8 };
    int sv[N][2];
    char msg[N][64];
    ag_batch_send_t *b = make(16);
    for (int i = 0; i < N; i++) {
        pair(sv[i]);
        int len = snprintf(msg[i], sizeof(msg[i]), "line %d to socket %d", i, sv[i][0]);
        assert_int_equal(ag_batch_send_add(b, sv[i][0], msg[i], (size_t)len), i);
    }
    assert_int_equal(ag_batch_send_room(b), 16 - N);
    ssize_t res[N];
    assert_int_equal(ag_batch_send_submit(b, res), N);
    assert_int_equal(ag_batch_send_room(b), 16);
    for (int i = 0; i < N; i++) {
        size_t len = strlen(msg[i]);
        assert_int_equal(res[i], (ssize_t)len);
        /* nothing in flight: the buffer may change now without changing what the peer gets */
        char sent[64];
        memcpy(sent, msg[i], sizeof(sent));
        memset(msg[i], 'x', sizeof(msg[i]));
        expect_bytes(sv[i][1], sent, len);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    ag_batch_send_destroy(b);
}

static void test_full(void **state)
{
    int sv[2];
    pair(sv);
    ag_batch_send_t *b = make(2);
    assert_int_equal(ag_batch_send_add(b, sv[0], "a", 1), 0);
    assert_int_equal(ag_batch_send_add(b, sv[0], "b", 1), 1);
    assert_int_equal(ag_batch_send_room(b), 0);
    assert_int_equal(ag_batch_send_add(b, sv[0], "c", 1), AG_EBUSY);
    ssize_t res[2];
    assert_int_equal(ag_batch_send_submit(b, res), 2);
    assert_int_equal(res[0], 1);
    assert_int_equal(res[1], 1);
    expect_bytes(sv[1], "ab", 2); /* in the order they were added, the refused one not at all */
    ag_batch_send_destroy(b);
    close(sv[0]);
    close(sv[1]);
}

/* A loopback TCP connection whose receiver never reads, with small buffers on both sides. */
static void tcp_pair(int *client, int *server)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(setsockopt(*client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
    *server = accept(l, NULL, NULL);
    assert_true(*server >= 0);
    assert_int_equal(setsockopt(*server, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    close(l);
}

static void test_partial_and_eagain(void **state)
{
    enum { BIG = 4 << 20 };
    int c, srv, sv[2];
    tcp_pair(&c, &srv);
    pair(sv);
    char *big = malloc(BIG);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 7);
    ag_batch_send_t *b = make(8);
    /* send the rest again and again, as a caller does: each takes part of it until the socket is full */
    size_t total = 0;
    ssize_t res[3] = {0, 0, 0};
    for (int round = 0; round < 1000; round++) {
        assert_int_equal(ag_batch_send_add(b, c, big + total, BIG - total), 0);
        assert_int_equal(ag_batch_send_submit(b, res), 1);
        if (res[0] < 0)
            break;
        assert_true(res[0] > 0);
        assert_true((size_t)res[0] < BIG - total); /* short: the socket took what fit */
        total += (size_t)res[0];
    }
    assert_int_equal(res[0], -EAGAIN);
    assert_true(total > 0);
    /* full now: it answers -EAGAIN in a batch too, and a send to another socket in the same batch goes whole */
    assert_int_equal(ag_batch_send_add(b, c, big + total, BIG - total), 0);
    assert_int_equal(ag_batch_send_add(b, sv[0], "whole", 5), 1);
    assert_int_equal(ag_batch_send_submit(b, res), 2);
    assert_int_equal(res[0], -EAGAIN);
    assert_int_equal(res[1], 5);
    expect_bytes(sv[1], "whole", 5);
    /* the kernel holds exactly what the short send reported, in order */
    /* (what sits in the sender's buffer moves over as the receiver reads: a blocking read with a deadline) */
    struct timeval tv = {5, 0};
    assert_int_equal(setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    size_t have = 0;
    char *got = malloc(BIG);
    assert_non_null(got);
    for (int reads = 0; have < total && reads < 100000; reads++) {
        ssize_t r = recv(srv, got + have, total - have, 0);
        if (r > 0)
            have += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            break;
    }
    assert_int_equal(have, total);
    assert_memory_equal(got, big, have);
    assert_int_equal(recv(srv, got, 1, MSG_DONTWAIT), -1); /* and nothing of the refused sends */
    free(got);
    free(big);
    ag_batch_send_destroy(b);
    close(c);
    close(srv);
    close(sv[0]);
    close(sv[1]);
}

static void test_errors(void **state)
{
    int gone[2], ok[2], reset_c, reset_s;
    pair(gone);
    pair(ok);
    close(gone[1]);
    /* a TCP peer that closed with unread data answers with a reset */
    tcp_pair(&reset_c, &reset_s);
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(reset_s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(reset_s);
    usleep(10000);
    ag_batch_send_t *b = make(8); /* first: the closed descriptor's number must not be the ring's */
    int closed_fd = dup(ok[0]);
    close(closed_fd);
    assert_int_equal(ag_batch_send_add(b, gone[0], "x", 1), 0);
    assert_int_equal(ag_batch_send_add(b, closed_fd, "x", 1), 1);
    assert_int_equal(ag_batch_send_add(b, reset_c, "x", 1), 2);
    assert_int_equal(ag_batch_send_add(b, ok[0], "still", 5), 3);
    ssize_t res[4];
    assert_int_equal(ag_batch_send_submit(b, res), 4); /* and no SIGPIPE: the test would end of it */
    assert_int_equal(res[0], -EPIPE);
    assert_int_equal(res[1], -EBADF);
    assert_true(res[2] == -ECONNRESET || res[2] == -EPIPE);
    assert_int_equal(res[3], 5); /* the others' errors do not stop it */
    expect_bytes(ok[1], "still", 5);
    ag_batch_send_destroy(b);
    close(gone[0]);
    close(ok[0]);
    close(ok[1]);
    close(reset_c);
}

/* Submits in a row reuse the ring: every completion is read each time, so none is taken for a later batch's. */
static void test_many_submits(void **state)
{
    int sv[3][2];
    for (int i = 0; i < 3; i++)
        pair(sv[i]);
    ag_batch_send_t *b = make(3);
    for (int round = 0; round < 2000; round++) {
        char m[3][16];
        for (int i = 0; i < 3; i++) {
            int len = snprintf(m[i], sizeof(m[i]), "%d:%d", round, i);
            assert_int_equal(ag_batch_send_add(b, sv[i][0], m[i], (size_t)len), i);
        }
        ssize_t res[3];
        assert_int_equal(ag_batch_send_submit(b, res), 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(res[i], (ssize_t)strlen(m[i]));
            expect_bytes(sv[i][1], m[i], strlen(m[i]));
        }
    }
    ag_batch_send_destroy(b);
    for (int i = 0; i < 3; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a send to a closed peer that raised SIGPIPE would end the test */
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_create), cmocka_unit_test(test_whole),
                                       cmocka_unit_test(test_full),   cmocka_unit_test(test_partial_and_eagain),
                                       cmocka_unit_test(test_errors), cmocka_unit_test(test_many_submits)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
