#include "limit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "http.h"

/* Entries kept beyond the connection cap: addresses seen recently that hold no connection now. */
#define IDLE_PEERS 4096
#define MAX_PEERS (1u << 20)

static uint64_t mono_ms(void)
{
    return ag_mono_ns() / 1000000;
}

/* --- addresses --- */

void ag_limits_key_text(const char *ip, char key[AG_PEER_KEY_LEN])
{
    struct in_addr a4;
    struct in6_addr a6;
    char buf[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, ip, &a4) == 1 && inet_ntop(AF_INET, &a4, buf, sizeof(buf)) != NULL) {
        snprintf(key, AG_PEER_KEY_LEN, "%s", buf);
    } else if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            memcpy(&a4, &a6.s6_addr[12], 4);
            inet_ntop(AF_INET, &a4, buf, sizeof(buf));
            snprintf(key, AG_PEER_KEY_LEN, "%s", buf);
        } else {
            /* one subscriber usually holds a whole /64: counting single addresses would let it spread */
            memset(&a6.s6_addr[8], 0, 8);
            inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
            snprintf(key, AG_PEER_KEY_LEN, "%s/64", buf);
        }
    } else {
        snprintf(key, AG_PEER_KEY_LEN, "%s", ip);
    }
}

void ag_limits_sockaddr_text(const struct sockaddr *sa, char ip[64])
{
    ip[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, 64);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], ip, 64);
        else
            inet_ntop(AF_INET6, a6, ip, 64);
    }
}

int ag_limits_exempt(const ag_server_t *s, const char *ip)
{
    /* entries may be CIDR ranges (checked at load), so compare addresses, not their text */
    ag_addr_t addr;
    if (ip == NULL || ag_addr_parse(ip, strlen(ip), &addr, NULL, NULL) != 0)
        return 0;
    for (char *const *p = s->config->general.trustedProxies; p != NULL && *p != NULL; p++)
        if (ag_addr_match(*p, &addr) == 1)
            return 1;
    return 0;
}

/* --- the per-address table --- */

static uint64_t idle_expiry_ms(const ag_limits_t *l)
{
    const ag_config_t *cfg = l->server->config;
    double rate = cfg->servers.web.handshakeRate;
    if (rate <= 0)
        return 0;
    int burst = cfg->servers.web.handshakeBurst < 1 ? 1 : cfg->servers.web.handshakeBurst;
    return (uint64_t)ceil((double)burst * 1000.0 / rate);
}

static void peer_remove(ag_limits_t *l, ag_peer_t *p)
{
    if (h2o_linklist_is_linked(&p->idle))
        h2o_linklist_unlink(&p->idle);
    ag_map_del(&l->peers, p->key);
    free(p);
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    ag_limits_t *l = H2O_STRUCT_FROM_MEMBER(ag_limits_t, sweep, entry);
    uint64_t now = mono_ms(), expiry = idle_expiry_ms(l);
    while (!h2o_linklist_is_empty(&l->idle)) {
        ag_peer_t *p = H2O_STRUCT_FROM_MEMBER(ag_peer_t, idle, l->idle.next);
        if (now - p->seen_ms < expiry)
            break; /* its bucket is not full yet, and every later entry was seen later */
        peer_remove(l, p);
    }
    if (!h2o_linklist_is_empty(&l->idle))
        h2o_timeout_link(l->server->loop, &l->server->ctx.one_sec_timeout, &l->sweep);
}

/* Seen now: an entry without a connection moves to the young end of the idle list. */
static void peer_touch(ag_limits_t *l, ag_peer_t *p)
{
    p->seen_ms = mono_ms();
    if (p->conns != 0)
        return;
    if (h2o_linklist_is_linked(&p->idle))
        h2o_linklist_unlink(&p->idle);
    h2o_linklist_insert(&l->idle, &p->idle);
    if (!h2o_timeout_is_linked(&l->sweep))
        h2o_timeout_link(l->server->loop, &l->server->ctx.one_sec_timeout, &l->sweep);
}

/* The entry for key, created when missing (evicting the least recently seen idle one when the table is full). NULL
 * only when every entry holds a connection or memory is out. */
static ag_peer_t *peer_get(ag_limits_t *l, const char *key)
{
    ag_peer_t *p = ag_map_get(&l->peers, key);
    if (p != NULL)
        return p;
    if (l->peers.size >= l->max_peers) {
        if (h2o_linklist_is_empty(&l->idle))
            return NULL;
        peer_remove(l, H2O_STRUCT_FROM_MEMBER(ag_peer_t, idle, l->idle.next));
    }
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return NULL;
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->owner = l;
    if (ag_map_set(&l->peers, p->key, p) != AG_OK) {
        free(p);
        return NULL;
    }
    peer_touch(l, p);
    return p;
}

ag_limits_t *ag_limits_create(ag_server_t *s, size_t max_tcp)
{
    ag_limits_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->server = s;
    ag_map_init(&l->peers);
    h2o_linklist_init_anchor(&l->idle);
    l->exempt.owner = l;
    l->max_tcp = max_tcp;
    l->max_peers = max_tcp + IDLE_PEERS < MAX_PEERS ? max_tcp + IDLE_PEERS : MAX_PEERS;
    l->sweep.cb = on_sweep;
    return l;
}

void ag_limits_destroy(ag_limits_t *l)
{
    if (l == NULL)
        return;
    if (h2o_timeout_is_linked(&l->sweep))
        h2o_timeout_unlink(&l->sweep);
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&l->peers, &it, &k, &v);)
        free(v);
    ag_map_dispose(&l->peers);
    free(l);
}

ag_peer_t *ag_limits_tcp_open(ag_limits_t *l, const struct sockaddr *sa)
{
    int cap = l->server->config->servers.web.maxConnectionsPerIp;
    char ip[64], key[AG_PEER_KEY_LEN];
    ag_limits_sockaddr_text(sa, ip);
    ag_peer_t *p = NULL;
    if (cap > 0 && ip[0] != '\0' && !ag_limits_exempt(l->server, ip)) {
        ag_limits_key_text(ip, key);
        p = peer_get(l, key);
    }
    /* no entry: exempt, or (cannot happen with the table sized above the connection cap) no room to count it */
    if (p == NULL)
        p = &l->exempt;
    if (p != &l->exempt && p->conns >= (uint32_t)cap) {
        peer_touch(l, p);
        return NULL;
    }
    if (p->conns++ == 0 && h2o_linklist_is_linked(&p->idle))
        h2o_linklist_unlink(&p->idle);
    l->tcp_conns++;
    return p;
}

void ag_limits_tcp_closed(ag_peer_t *p)
{
    ag_limits_t *l = p->owner;
    l->tcp_conns--;
    if (--p->conns == 0 && p != &l->exempt)
        peer_touch(l, p);
}

int ag_limits_handshake(h2o_req_t *req)
{
    ag_server_t *s = ag_http_server(req);
    const ag_config_t *cfg = s->config;
    double rate = cfg->servers.web.handshakeRate;
    if (rate <= 0 || s->limits == NULL)
        return 1;
    char ip[64], key[AG_PEER_KEY_LEN];
    int port;
    ag_http_peer_info(req, ip, &port);
    if (ag_limits_exempt(s, ip))
        return 1;
    ag_limits_key_text(ip, key);
    ag_peer_t *p = peer_get(s->limits, key);
    if (p == NULL)
        return 1;
    peer_touch(s->limits, p);
    if (ag_bucket_take(&p->handshakes, mono_ms(), rate, cfg->servers.web.handshakeBurst) == AG_BUCKET_OK)
        return 1;
    s->stats.handshakes_refused++;
    ag_log_limited(AG_LOG_WARN, "limits", NULL, "%s: over the handshake rate (%g/s, burst %d); refused", key, rate,
                   cfg->servers.web.handshakeBurst);
    return 0;
}

void ag_limits_respond_refused(h2o_req_t *req)
{
    const ag_config_t *cfg = ag_http_server(req)->config;
    double rate = cfg->servers.web.handshakeRate;
    /* when the next token is there, in whole seconds */
    long secs = rate > 0 ? (long)ceil(1.0 / rate) : 1;
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%ld", secs < 1 ? 1 : secs);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, buf, (size_t)n).base,
                   (size_t)n);
    if (req->upgrade.base != NULL)
        req->http1_is_persistent = 0;
    ag_http_respond(req, 429, "Too Many Requests", "text/plain", H2O_STRLIT("too many new connections from this address"));
}

ag_bucket_result_t ag_limits_message(ag_server_t *s, ag_bucket_t *b, int exempt)
{
    const ag_config_t *cfg = s->config;
    if (exempt || cfg->servers.websocket.server.messageRate <= 0)
        return AG_BUCKET_OK;
    ag_bucket_result_t r =
        ag_bucket_take(b, mono_ms(), cfg->servers.websocket.server.messageRate, cfg->servers.websocket.server.messageBurst);
    if (r != AG_BUCKET_OK)
        s->stats.messages_refused++;
    return r;
}
