/*
 * Test helper for the Redis unit tests: a real redis-server on a free loopback port, and a way
 * to run the h2o loop until an async answer came. Header-only: each test executable includes it once.
 */
#ifndef AG_TEST_REDIS_HELPER_H
#define AG_TEST_REDIS_HELPER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#define H2O_USE_EPOLL 1
#include <h2o.h>
#include <hiredis/hiredis.h>
#include "common.h"

typedef struct {
    pid_t pid; /* 0 when the URL came from AG_TEST_REDIS_URL */
    int port;
    char url[128];
    char dir[64];
} test_redis_t;

static inline int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        abort();
    close(fd);
    return ntohs(sin.sin_port);
}

static inline int test_redis_ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c != NULL && c->err == 0) {
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

/* Starts redis-server on r->port (picked when 0). Returns 0 when it answers PING. */
static inline int test_redis_start(test_redis_t *r)
{
    if (r->port == 0)
        r->port = test_free_port();
    if (r->dir[0] == '\0') {
        snprintf(r->dir, sizeof(r->dir), "/tmp/ag-unit-redis-XXXXXX");
        if (mkdtemp(r->dir) == NULL)
            return -1;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a crashed test */
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
               r->dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        if (test_redis_ping(r->port)) {
            snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
            return 0;
        }
        usleep(50000);
    }
    return -1;
}

static inline void test_redis_kill(test_redis_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

/* A redis-server of our own for the whole test run (the tests stop and restart it). */
static inline int test_redis_setup(test_redis_t *r)
{
    memset(r, 0, sizeof(*r));
    return test_redis_start(r);
}

static inline void test_redis_teardown(test_redis_t *r)
{
    test_redis_kill(r);
    if (r->dir[0] != '\0')
        rmdir(r->dir);
}

/* Runs the loop until *flag is set or ms passed; returns *flag. */
static inline int test_run_until(h2o_evloop_t *loop, volatile int *flag, int ms)
{
    uint64_t deadline = ag_mono_ns() / 1000000 + (uint64_t)ms;
    while (!*flag && ag_mono_ns() / 1000000 < deadline)
        h2o_evloop_run(loop, 10);
    return *flag;
}

/* Runs the loop for ms. */
static inline void test_run_for(h2o_evloop_t *loop, int ms)
{
    int never = 0;
    test_run_until(loop, &never, ms);
}

#endif
