/*
 * Signed tokens (server/token.h): the verifier on libjwt 1.10, and the node's part (where a handshake carries a token,
 * the expiry heap, the refresh).
 */
#include "token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "http.h"

/* --- errors --- */

const char *ag_token_strerror(ag_token_err_t err)
{
    switch (err) {
    case AG_TOKEN_OK:
        return "ok";
    case AG_TOKEN_MISSING:
        return "no token";
    case AG_TOKEN_TOO_LARGE:
        return "token too large";
    case AG_TOKEN_MALFORMED:
        return "malformed token";
    case AG_TOKEN_ALG:
        return "algorithm not allowed";
    case AG_TOKEN_CRIT:
        return "critical header extension";
    case AG_TOKEN_SIGNATURE:
        return "bad signature";
    case AG_TOKEN_EXPIRED:
        return "expired";
    case AG_TOKEN_NOT_YET:
        return "not yet valid (nbf)";
    case AG_TOKEN_AUDIENCE:
        return "audience not accepted";
    case AG_TOKEN_ISSUER:
        return "issuer not accepted";
    case AG_TOKEN_SUBJECT:
        return "subject is not the connection's user";
    case AG_TOKEN_SERVER_ERROR:
        return "out of memory";
    }
    return "unknown error";
}

const char *ag_token_client_error(ag_token_err_t err)
{
    switch (err) {
    case AG_TOKEN_MISSING:
        return "a token is required";
    case AG_TOKEN_TOO_LARGE:
        return "token too large";
    case AG_TOKEN_EXPIRED:
        return "token expired";
    case AG_TOKEN_NOT_YET:
        return "token not yet valid";
    case AG_TOKEN_AUDIENCE:
        return "token audience not accepted";
    case AG_TOKEN_ISSUER:
        return "token issuer not accepted";
    case AG_TOKEN_SUBJECT:
        return "token subject does not match the connection's user";
    case AG_TOKEN_SERVER_ERROR:
        return "server error";
    default:
        return "invalid token";
    }
}

/* --- the verifier --- */

#define MAX_KEY_FILE (64 * 1024)

struct st_ag_token_verifier_t {
    unsigned allowed;    /* bit (1 << jwt_alg_t) per allowed algorithm */
    unsigned char *hmac; /* tokens.secret */
    size_t hmac_len;
    unsigned char *pem; /* the public key file's text, NUL-terminated */
    size_t pem_len;
    int64_t leeway;
    size_t max_bytes;
    char *audience, *issuer; /* NULL = not checked */
};

#define ALG_BIT(a) (1u << (unsigned)(a))
#define HS_ALGS (ALG_BIT(JWT_ALG_HS256) | ALG_BIT(JWT_ALG_HS384) | ALG_BIT(JWT_ALG_HS512))
#define RS_ALGS (ALG_BIT(JWT_ALG_RS256) | ALG_BIT(JWT_ALG_RS384) | ALG_BIT(JWT_ALG_RS512))
#define ES_ALGS (ALG_BIT(JWT_ALG_ES256) | ALG_BIT(JWT_ALG_ES384) | ALG_BIT(JWT_ALG_ES512))

/* Our own table, not jwt_str_alg: libjwt's also knows "none", which must never mean anything here. */
static jwt_alg_t alg_of(const char *name)
{
    static const struct {
        const char *name;
        jwt_alg_t alg;
    } algs[] = {{"HS256", JWT_ALG_HS256}, {"HS384", JWT_ALG_HS384}, {"HS512", JWT_ALG_HS512},
                {"RS256", JWT_ALG_RS256}, {"RS384", JWT_ALG_RS384}, {"RS512", JWT_ALG_RS512},
                {"ES256", JWT_ALG_ES256}, {"ES384", JWT_ALG_ES384}, {"ES512", JWT_ALG_ES512}};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(name, algs[i].name) == 0)
            return algs[i].alg;
    return JWT_ALG_INVAL;
}

int ag_token_configured(const ag_config_t *cfg)
{
    return cfg->tokens.secret[0] != '\0' || cfg->tokens.publicKeyFile[0] != '\0';
}

/* Reads the PEM file (bounded) and tells its key type: EVP_PKEY_RSA or EVP_PKEY_EC, else -1 with errbuf set. */
static int load_key(ag_token_verifier_t *v, const char *path, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(errbuf, errlen, "tokens.publicKeyFile: cannot open %.200s: %s", path, strerror(errno));
        return -1;
    }
    v->pem = malloc(MAX_KEY_FILE + 1);
    size_t n = v->pem != NULL ? fread(v->pem, 1, MAX_KEY_FILE + 1, f) : 0;
    fclose(f);
    if (v->pem == NULL || n == 0 || n > MAX_KEY_FILE) {
        snprintf(errbuf, errlen, "tokens.publicKeyFile: %.200s is empty, unreadable or over 64 KiB", path);
        return -1;
    }
    v->pem[n] = '\0';
    v->pem_len = n;
    BIO *bio = BIO_new_mem_buf(v->pem, (int)n);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    int type = key != NULL ? EVP_PKEY_base_id(key) : -1;
    EVP_PKEY_free(key);
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
        snprintf(errbuf, errlen, "tokens.publicKeyFile: %.200s holds no RSA or EC public key (PEM \"PUBLIC KEY\")", path);
        return -1;
    }
    return type;
}

ag_token_verifier_t *ag_token_verifier_create(const ag_config_t *cfg, char *errbuf, size_t errlen)
{
    if (!ag_token_configured(cfg)) {
        snprintf(errbuf, errlen, "tokens: neither tokens.secret nor tokens.publicKeyFile is set");
        return NULL;
    }
    ag_token_verifier_t *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    unsigned usable = 0;
    if (cfg->tokens.secret[0] != '\0') {
        v->hmac_len = strlen(cfg->tokens.secret);
        if ((v->hmac = malloc(v->hmac_len)) == NULL)
            goto oom;
        memcpy(v->hmac, cfg->tokens.secret, v->hmac_len);
        usable |= HS_ALGS;
    }
    if (cfg->tokens.publicKeyFile[0] != '\0') {
        int type = load_key(v, cfg->tokens.publicKeyFile, errbuf, errlen);
        if (type < 0)
            goto fail;
        usable |= type == EVP_PKEY_RSA ? RS_ALGS : ES_ALGS;
    }
    if (cfg->tokens.algorithms[0] == NULL) {
        v->allowed = usable;
    } else {
        for (char **a = cfg->tokens.algorithms; *a != NULL; a++) {
            jwt_alg_t alg = alg_of(*a);
            if (alg == JWT_ALG_INVAL || !(usable & ALG_BIT(alg))) {
                snprintf(errbuf, errlen, "tokens.algorithms: %.40s cannot be checked with the configured %s", *a,
                         (*a)[0] == 'H' ? "secret" : "key (RSA keys check RS*, EC keys ES*)");
                goto fail;
            }
            v->allowed |= ALG_BIT(alg);
        }
    }
    v->leeway = cfg->tokens.leeway;
    v->max_bytes = (size_t)cfg->tokens.maxBytes;
    if (cfg->tokens.audience[0] != '\0' && (v->audience = strdup(cfg->tokens.audience)) == NULL)
        goto oom;
    if (cfg->tokens.issuer[0] != '\0' && (v->issuer = strdup(cfg->tokens.issuer)) == NULL)
        goto oom;
    return v;
oom:
    snprintf(errbuf, errlen, "out of memory");
fail:
    ag_token_verifier_destroy(v);
    return NULL;
}

void ag_token_verifier_destroy(ag_token_verifier_t *v)
{
    if (v == NULL)
        return;
    if (v->hmac != NULL)
        OPENSSL_cleanse(v->hmac, v->hmac_len);
    free(v->hmac);
    free(v->pem);
    free(v->audience);
    free(v->issuer);
    free(v);
}

static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url into out (at least len * 3 / 4 + 1 bytes); -1 on a byte outside the alphabet, a length
 * no encoding has, or unused bits that are not zero (one token, one spelling). */
static ssize_t b64url_decode(const char *s, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (ssize_t)o;
}

/* One part of the token as a JSON object (duplicate keys refused: two "alg"s must not mean two things), or NULL. */
static json_t *part_object(const char *s, size_t len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL)
        return NULL;
    ssize_t n = b64url_decode(s, len, buf);
    json_t *j = n > 0 ? json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(buf);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* A NumericDate claim: absent (0, *present 0), a number (1), or the wrong type (-1). */
static int numeric_date(const json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 1;
}

static ag_token_err_t check_claims(const ag_token_verifier_t *v, const json_t *claims, int64_t now)
{
    double exp = 0, nbf = 0;
    int has_exp = numeric_date(claims, "exp", &exp), has_nbf = numeric_date(claims, "nbf", &nbf);
    json_t *sub = json_object_get(claims, "sub"), *iss = json_object_get(claims, "iss"), *aud = json_object_get(claims, "aud");
    if (has_exp < 0 || has_nbf < 0 || (sub != NULL && !json_is_string(sub)) || (iss != NULL && !json_is_string(iss)) ||
        (aud != NULL && !json_is_string(aud) && !json_is_array(aud)))
        return AG_TOKEN_MALFORMED;
    /* RFC 7519 4.1.4: expired on or after exp */
    if (has_exp && (double)now >= exp + (double)v->leeway)
        return AG_TOKEN_EXPIRED;
    if (has_nbf && (double)now + (double)v->leeway < nbf)
        return AG_TOKEN_NOT_YET;
    if (v->audience != NULL) {
        int found = json_is_string(aud) && strcmp(json_string_value(aud), v->audience) == 0;
        size_t i;
        json_t *a;
        json_array_foreach(json_is_array(aud) ? aud : NULL, i, a) found |=
            json_is_string(a) && strcmp(json_string_value(a), v->audience) == 0;
        if (!found)
            return AG_TOKEN_AUDIENCE;
    }
    if (v->issuer != NULL && !(json_is_string(iss) && strcmp(json_string_value(iss), v->issuer) == 0))
        return AG_TOKEN_ISSUER;
    return AG_TOKEN_OK;
}

ag_token_err_t ag_token_verify(const ag_token_verifier_t *v, const char *text, size_t len, int64_t now, json_t **claims)
{
    *claims = NULL;
    if (len > v->max_bytes)
        return AG_TOKEN_TOO_LARGE;
    /* header.payload.signature, nothing else */
    const char *dot1 = memchr(text, '.', len);
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', (size_t)(text + len - dot1 - 1)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(text + len - dot2 - 1)) != NULL || dot1 == text || dot2 == dot1 + 1)
        return AG_TOKEN_MALFORMED;
    json_t *header = part_object(text, (size_t)(dot1 - text));
    if (header == NULL)
        return AG_TOKEN_MALFORMED;
    const char *alg_name = json_string_value(json_object_get(header, "alg"));
    jwt_alg_t alg = alg_name != NULL ? alg_of(alg_name) : JWT_ALG_INVAL;
    int crit = json_object_get(header, "crit") != NULL;
    json_decref(header);
    /* before libjwt sees it: 1.10 would take any alg the token names, "none" included */
    if (alg == JWT_ALG_INVAL || !(v->allowed & ALG_BIT(alg)))
        return AG_TOKEN_ALG;
    if (crit)
        return AG_TOKEN_CRIT;
    if (dot2 + 1 == text + len)
        return AG_TOKEN_SIGNATURE; /* no signature at all */

    const unsigned char *key = (v->allowed & ALG_BIT(alg) & HS_ALGS) ? v->hmac : v->pem;
    size_t key_len = key == v->hmac ? v->hmac_len : v->pem_len;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return AG_TOKEN_SERVER_ERROR;
    memcpy(copy, text, len);
    copy[len] = '\0';
    jwt_t *jwt = NULL;
    int rc = strlen(copy) == len ? jwt_decode(&jwt, copy, key, (int)key_len) : EINVAL; /* a NUL inside: malformed */
    free(copy);
    /* libjwt checked the signature with the algorithm the header names: the one allowed above, with its own key */
    int ok = rc == 0 && jwt != NULL && jwt_get_alg(jwt) == alg;
    jwt_free(jwt);
    if (!ok)
        return AG_TOKEN_SIGNATURE;

    json_t *payload = part_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (payload == NULL)
        return AG_TOKEN_MALFORMED;
    ag_token_err_t err = check_claims(v, payload, now);
    if (err != AG_TOKEN_OK) {
        json_decref(payload);
        return err;
    }
    *claims = payload;
    return AG_TOKEN_OK;
}

/* --- the node's part --- */

/* Deadlines are wall-clock ms (exp is wall-clock seconds). The earliest one is waited for on the largest step of this
 * ladder that does not pass it, so a deadline an hour away costs one wake-up per second at most, and a few more at
 * the end. */
static const uint64_t ladder[] = {10, 100, 1000};
#define NLADDER (sizeof(ladder) / sizeof(ladder[0]))

struct st_ag_tokens_t {
    ag_server_t *server;
    ag_token_verifier_t *v;
    ag_conn_t **heap; /* by token_deadline; c->token_slot is 1 + its index */
    size_t len, cap;
    h2o_timeout_t steps[NLADDER];
    h2o_timeout_entry_t tick;
};

int ag_token_enabled(ag_server_t *s)
{
    return s->tokens != NULL;
}

int ag_token_optional(ag_server_t *s)
{
    return s->tokens == NULL || !s->config->tokens.require;
}

static void heap_swap(ag_conn_t **h, size_t i, size_t j)
{
    ag_conn_t *t = h[i];
    h[i] = h[j];
    h[j] = t;
    h[i]->token_slot = i + 1;
    h[j]->token_slot = j + 1;
}

static void heap_up(ag_conn_t **h, size_t i)
{
    while (i > 0 && h[(i - 1) / 2]->token_deadline > h[i]->token_deadline) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(ag_conn_t **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l]->token_deadline < h[m]->token_deadline)
            m = l;
        if (r < n && h[r]->token_deadline < h[m]->token_deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_remove(struct st_ag_tokens_t *t, ag_conn_t *c)
{
    size_t i = c->token_slot - 1;
    c->token_slot = 0;
    t->len--;
    if (i != t->len) {
        t->heap[i] = t->heap[t->len];
        t->heap[i]->token_slot = i + 1;
        heap_down(t->heap, t->len, i);
        heap_up(t->heap, i);
    }
}

static void schedule(struct st_ag_tokens_t *t)
{
    if (h2o_timeout_is_linked(&t->tick))
        h2o_timeout_unlink(&t->tick);
    if (t->len == 0)
        return;
    uint64_t now = ag_now_ms(), due = t->heap[0]->token_deadline;
    uint64_t wait = due > now ? due - now : 0;
    size_t step = 0;
    while (step + 1 < NLADDER && ladder[step + 1] <= wait)
        step++;
    h2o_timeout_link(t->server->loop, &t->steps[step], &t->tick);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    struct st_ag_tokens_t *t = H2O_STRUCT_FROM_MEMBER(struct st_ag_tokens_t, tick, entry);
    uint64_t now = ag_now_ms();
    while (t->len != 0 && t->heap[0]->token_deadline <= now) {
        ag_conn_t *c = t->heap[0];
        heap_remove(t, c);
        ag_log_limited(AG_LOG_INFO, "tokens", c->id, "token expired: closing the connection");
        ag_conn_close(c, &AG_DISCONNECT_TOKEN_EXPIRED);
        ag_conn_release(c); /* the watch's */
    }
    schedule(t);
}

/* The wall-clock ms at which claims' exp passes (leeway included), or 0 when it has none. */
static uint64_t deadline_of(ag_server_t *s, const json_t *claims)
{
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_number(exp))
        return 0;
    double ms = (json_number_value(exp) + (double)s->config->tokens.leeway) * 1000.0;
    if (!(ms >= 1.0)) /* also NaN: a deadline in the past, closed at once */
        return 1;
    return ms >= 9.0e15 ? (uint64_t)9e15 : (uint64_t)ms;
}

void ag_token_watch(ag_conn_t *c)
{
    struct st_ag_tokens_t *t = c->server->tokens;
    if (t == NULL || c->token_slot != 0 || ag_conn_is_closed(c))
        return;
    uint64_t deadline = deadline_of(c->server, c->claims);
    if (deadline == 0)
        return;
    if (t->len == t->cap) {
        size_t ncap = t->cap == 0 ? 16 : t->cap * 2;
        ag_conn_t **n = realloc(t->heap, ncap * sizeof(*n));
        if (n == NULL) {
            /* a connection whose expiry cannot be kept must not outlive its token */
            ag_conn_close(c, &AG_DISCONNECT_SERVER_ERROR);
            return;
        }
        t->heap = n;
        t->cap = ncap;
    }
    c->token_deadline = deadline;
    t->heap[t->len] = ag_conn_addref(c);
    c->token_slot = ++t->len;
    heap_up(t->heap, t->len - 1);
    schedule(t);
}

void ag_token_unwatch(ag_conn_t *c)
{
    struct st_ag_tokens_t *t = c->server->tokens;
    if (t == NULL || c->token_slot == 0)
        return;
    heap_remove(t, c);
    schedule(t);
    ag_conn_release(c);
}

static ag_token_err_t check(ag_server_t *s, const char *text, size_t len, const char *who, json_t **claims)
{
    *claims = NULL;
    if (s->tokens == NULL)
        return AG_TOKEN_OK;
    if (text == NULL) {
        if (ag_token_optional(s))
            return AG_TOKEN_OK;
        ag_log_limited(AG_LOG_INFO, "tokens", NULL, "refused %s: no token, and one is required", who);
        return AG_TOKEN_MISSING;
    }
    ag_token_err_t err = ag_token_verify(s->tokens->v, text, len, (int64_t)(ag_now_ms() / 1000), claims);
    if (err != AG_TOKEN_OK) {
        /* the reason and the peer, never the token: it could be a real one, mistyped or stolen */
        if (err == AG_TOKEN_SIGNATURE || err == AG_TOKEN_ALG || err == AG_TOKEN_CRIT)
            ag_log_limited(AG_LOG_WARN, "tokens", NULL, "refused a forged or foreign token from %s: %s", who,
                           ag_token_strerror(err));
        else
            ag_log_limited(AG_LOG_INFO, "tokens", NULL, "refused a token from %s: %s", who, ag_token_strerror(err));
    }
    return err;
}

ag_token_err_t ag_token_check_text(ag_server_t *s, const char *text, size_t len, const char *who, json_t **claims)
{
    return check(s, text, len, who, claims);
}

ag_token_err_t ag_token_check_request(ag_server_t *s, h2o_req_t *req, int allow_missing, json_t **claims)
{
    *claims = NULL;
    if (s->tokens == NULL)
        return AG_TOKEN_OK;
    const char *text = ag_http_query_param(req, s->config->tokens.queryParam);
    size_t len = text != NULL ? strlen(text) : 0;
    if (text == NULL) {
        size_t hlen;
        const char *auth = ag_http_header(req, "authorization", &hlen);
        if (auth != NULL && hlen > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
            text = auth + 7;
            len = hlen - 7;
            while (len > 0 && text[0] == ' ')
                text++, len--;
            while (len > 0 && text[len - 1] == ' ')
                len--;
        }
    }
    if (text == NULL && allow_missing)
        return AG_TOKEN_OK;
    char ip[64];
    int port;
    ag_http_peer_info(req, ip, &port);
    return check(s, text, len, ip, claims);
}

ag_token_err_t ag_token_refresh(ag_conn_t *c, const char *text, size_t len)
{
    ag_server_t *s = c->server;
    json_t *claims;
    ag_token_err_t err = check(s, text != NULL ? text : "", text != NULL ? len : 0, c->remote_ip, &claims);
    if (err != AG_TOKEN_OK)
        return err;
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if ((sub == NULL) != (c->user == NULL) || (sub != NULL && strcmp(sub, c->user) != 0)) {
        ag_log_limited(AG_LOG_WARN, "tokens", c->id, "refused a refresh: %s", ag_token_strerror(AG_TOKEN_SUBJECT));
        json_decref(claims);
        return AG_TOKEN_SUBJECT;
    }
    json_decref(c->claims);
    c->claims = claims;
    ag_conn_record_who(c);
    int watched = c->token_slot != 0;
    if (watched)
        ag_token_unwatch(c);
    ag_token_watch(c);
    ag_debug("tokens", c->id, "token refreshed%s", c->token_slot != 0 ? "" : " (no expiry)");
    return AG_TOKEN_OK;
}

int ag_token_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    if (!ag_token_configured(s->config))
        return 0;
    struct st_ag_tokens_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    if ((t->v = ag_token_verifier_create(s->config, errbuf, errlen)) == NULL) {
        free(t);
        return AG_EINVAL;
    }
    t->server = s;
    for (size_t i = 0; i < NLADDER; i++)
        h2o_timeout_init(s->loop, &t->steps[i], ladder[i]);
    t->tick.cb = on_tick;
    s->tokens = t;
    return 0;
}

void ag_token_dispose(ag_server_t *s)
{
    struct st_ag_tokens_t *t = s->tokens;
    if (t == NULL)
        return;
    if (h2o_timeout_is_linked(&t->tick))
        h2o_timeout_unlink(&t->tick);
    /* connections still open at the end (the shutdown deadline passed) keep their transports' references */
    while (t->len != 0) {
        ag_conn_t *c = t->heap[t->len - 1];
        c->token_slot = 0;
        t->len--;
        ag_conn_release(c);
    }
    s->tokens = NULL;
    for (size_t i = 0; i < NLADDER; i++)
        ag_server_timeout_dispose(s, &t->steps[i]);
    free(t->heap);
    ag_token_verifier_destroy(t->v);
    free(t);
}
