/*
 * The WebSocket layer (transports/ws.c) on a real node listening on 127.0.0.1 and a raw client socket from this
 * process, the loop run by the test: data frames framed here byte for byte (the three length forms), every frame of
 * one loop pass gathered and written together, a client PING answered, a masked message reassembled across writes, and
 * a quiet socket that hibernates (its wslay context freed) and wakes when bytes arrive.
 */
#include "session_fixture.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conn.h"
#include "ws.h"

static ag_server_t *srv;

static int setup(void **state)
{
    char err[256];
    srv = fixture_server("general:\n  welcomeMessage: \"\"\nservers:\n  web:\n    port: 0\n    bindIP: \"127.0.0.1\"\n"
                         "  websocket:\n    server:\n      primusPingInterval: 60000\n");
    assert_int_equal(ag_server_listen(srv, err, sizeof(err)), 0);
    /* ag_server_run starts accepting; this test runs the loop itself, so it takes the node's own resume path */
    srv->accept_paused = 1;
    h2o_timeout_link(srv->loop, &srv->ctx.zero_timeout, &srv->accept_resume);
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

/* Reads exactly n bytes from the client socket, running the node's loop meanwhile (about 5 s at most). */
static void read_exact(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    for (int i = 0; got < n && i < 500; i++) {
        h2o_evloop_run(srv->loop, 10);
        ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            fail_msg("the server closed the socket after %zu of %zu bytes", got, n);
    }
    assert_int_equal(got, n);
}

/* Reads one server frame: its first byte, and its payload (malloc'ed, *len bytes). */
static uint8_t *read_frame(int fd, uint8_t *b0, size_t *len)
{
    uint8_t h[8];
    read_exact(fd, h, 2);
    *b0 = h[0];
    assert_int_equal(h[1] & 0x80, 0); /* a server never masks */
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        read_exact(fd, h, 2);
        n = (uint64_t)h[0] << 8 | h[1];
        assert_true(n >= 126);
    } else if (n == 127) {
        read_exact(fd, h, 8);
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[i];
        assert_true(n > 0xffff);
    }
    uint8_t *p = malloc(n + 1);
    read_exact(fd, p, (size_t)n);
    *len = (size_t)n;
    return p;
}

/* Writes a masked client frame (fin, opcode) with payload. */
static void write_frame(int fd, int fin, int opcode, const void *data, size_t len)
{
    uint8_t buf[256];
    assert_true(len <= 125);
    static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    buf[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    buf[1] = (uint8_t)(0x80 | len);
    memcpy(buf + 2, mask, 4);
    for (size_t i = 0; i < len; i++)
        buf[6 + i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
    assert_int_equal(send(fd, buf, 6 + len, 0), (ssize_t)(6 + len));
}

static int has_conn(void *arg)
{
    return srv->conns.size > 0;
}

/* Connects a client to /primus and returns its socket; *c gets the server's connection. */
static int open_client(ag_conn_t **c)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ag_server_port(srv))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *req = "GET /primus HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    /* the 101 head, byte by byte up to the blank line */
    char head[1024];
    size_t n = 0;
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        assert_true(n < sizeof(head) - 1);
        read_exact(fd, (uint8_t *)head + n, 1);
        n++;
    }
    head[n] = '\0';
    assert_memory_equal(head, "HTTP/1.1 101", 12);
    assert_non_null(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    fixture_run_until(srv, has_conn, NULL, 2000);
    const char *k;
    void *v;
    size_t it = 0;
    assert_true(ag_map_next(&srv->conns, &it, &k, &v));
    *c = v;
    /* what the session sends on open, up to the answer of a first request */
    const char *first = "{\"event\":\"detailsView\",\"messageId\":1}";
    write_frame(fd, 1, 0x1, first, strlen(first));
    for (int i = 0; i < 10; i++) {
        uint8_t b0;
        size_t len;
        uint8_t *p = read_frame(fd, &b0, &len);
        p[len] = '\0';
        int done = strstr((char *)p, "\"messageId\":1}") != NULL;
        free(p);
        if (done)
            return fd;
    }
    fail_msg("no answer to the first request");
    return -1;
}

/* The primus transport's state starts with its ag_ws_t (transports/primus_ws.c). */
static ag_ws_t *ws_of(ag_conn_t *c)
{
    return *(ag_ws_t **)c->_transport_self;
}

static void send_text(ag_conn_t *c, size_t len, char fill)
{
    char *s = malloc(len);
    memset(s, fill, len);
    ag_frame_t *f = ag_frame_create(s, len, 0);
    assert_int_equal(ag_conn_send(c, f), 0);
    ag_frame_release(f); /* the queue holds its own reference */
    free(s);
}

static void close_client(int fd)
{
    close(fd);
    for (int i = 0; i < 50 && srv->conns.size > 0; i++)
        h2o_evloop_run(srv->loop, 10);
    assert_int_equal(srv->conns.size, 0);
}

static void test_framing_and_gathering(void **state)
{
    ag_conn_t *c;
    int fd = open_client(&c);
    /* the three length forms and their edges; queued in one pass, written together after it */
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 70000};
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    for (size_t i = 0; i < n; i++)
        send_text(c, sizes[i], (char)('a' + i));
    ag_ws_t *ws = ws_of(c);
    assert_int_equal(ag_ws_queued_count(ws), n);
    assert_true(ag_ws_queued_bytes(ws) >= 65535 + 65536 + 70000);
    for (size_t i = 0; i < n; i++) {
        uint8_t b0;
        size_t len;
        uint8_t *p = read_frame(fd, &b0, &len);
        assert_int_equal(b0, 0x81); /* FIN, text */
        assert_int_equal(len, sizes[i]);
        for (size_t j = 0; j < len; j++)
            if (p[j] != 'a' + i)
                fail_msg("frame %zu byte %zu: %c", i, j, p[j]);
        free(p);
    }
    assert_int_equal(ag_ws_queued_count(ws), 0);
    assert_int_equal(ag_ws_queued_bytes(ws), 0);
    close_client(fd);
}

static void test_ping_and_fragments(void **state)
{
    ag_conn_t *c;
    int fd = open_client(&c);
    write_frame(fd, 1, 0x9, "hb", 2); /* PING: answered with a PONG carrying the same payload */
    uint8_t b0;
    size_t len;
    uint8_t *p = read_frame(fd, &b0, &len);
    assert_int_equal(b0, 0x8a);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "hb", 2);
    free(p);
    /* one message in two fragments, written apart: the session sees it whole and answers it */
    const char *msg = "{\"event\":\"detailsView\",\"messageId\":7}";
    write_frame(fd, 0, 0x1, msg, 10);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(srv->loop, 10);
    write_frame(fd, 1, 0x0, msg + 10, strlen(msg) - 10);
    p = read_frame(fd, &b0, &len);
    assert_int_equal(b0, 0x81);
    p[len] = '\0';
    assert_non_null(strstr((char *)p, "\"messageId\":7"));
    assert_non_null(strstr((char *)p, c->id));
    free(p);
    close_client(fd);
}

static int asleep(void *arg)
{
    return ws_of(arg)->conn->ws_ctx == NULL;
}

static void test_hibernation(void **state)
{
    ag_conn_t *c;
    int fd = open_client(&c);
    assert_non_null(ws_of(c)->conn->ws_ctx);
    fixture_run_until(srv, asleep, c, 4000); /* quiet for a second */
    assert_null(ws_of(c)->conn->ws_ctx);
    /* a frame to a sleeping socket leaves without waking it */
    send_text(c, 300, 'z');
    uint8_t b0;
    size_t len;
    uint8_t *p = read_frame(fd, &b0, &len);
    assert_int_equal(len, 300);
    free(p);
    assert_null(ws_of(c)->conn->ws_ctx);
    /* bytes in wake it; the request is answered */
    const char *msg = "{\"event\":\"detailsView\",\"messageId\":9}";
    write_frame(fd, 1, 0x1, msg, strlen(msg));
    p = read_frame(fd, &b0, &len);
    p[len] = '\0';
    assert_non_null(strstr((char *)p, "\"messageId\":9"));
    free(p);
    assert_non_null(ws_of(c)->conn->ws_ctx);
    close_client(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_and_gathering),
        cmocka_unit_test(test_ping_and_fragments),
        cmocka_unit_test(test_hibernation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
