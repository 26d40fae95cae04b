/*
 * The token verifier (server/token.c) on arbitrary bytes. The first byte chooses what the rest is:
 *   even: a token's text, as a client would send it (the header and alg checks, base64url, libjwt's decoder);
 *   odd:  a header and a payload (split at the first NUL) that the harness encodes and signs with the verifier's own
 *         HMAC secret under the alg the header names, so that arbitrary claims reach the claim checks.
 * Besides what the sanitizers see: an accepted token gives an object whose sub, when present, is a string, and an
 * unsigned or "none" token is never accepted.
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "config.h"
#include "token.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret-0123"
#define NOW 1700000000
#define MAX_IN 16384

static ag_token_verifier_t *verifier;

static void init(void)
{
    char err[256];
    ag_config_t *c = ag_config_load_string("tokens:\n  secret: \"" SECRET "\"\n  audience: chat\n  leeway: 5\n  maxBytes: 12000\n",
                                           "fuzz.yaml", err, sizeof(err));
    if (c == NULL || (verifier = ag_token_verifier_create(c, err, sizeof(err))) == NULL) {
        fprintf(stderr, "fuzz_token: %s\n", err);
        abort();
    }
    ag_config_destroy(c);
}

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    return o;
}

static void check(const char *text, size_t len, int must_refuse)
{
    json_t *claims = (json_t *)1;
    ag_token_err_t err = ag_token_verify(verifier, text, len, NOW, &claims);
    if (err == AG_TOKEN_OK) {
        if (must_refuse || !json_is_object(claims))
            abort();
        json_t *sub = json_object_get(claims, "sub");
        if (sub != NULL && !json_is_string(sub))
            abort();
        json_decref(claims);
    } else if (claims != NULL) {
        abort();
    }
    if (ag_token_strerror(err) == NULL || ag_token_client_error(err) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (verifier == NULL)
        init();
    if (size < 1 || size > MAX_IN)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        /* a token with an empty signature part is never accepted */
        check(in, n, n > 0 && in[n - 1] == '.');
        return 0;
    }
    const char *nul = memchr(in, '\0', n);
    size_t hlen = nul != NULL ? (size_t)(nul - in) : n, plen = nul != NULL ? n - hlen - 1 : 0;
    char *tok = malloc((hlen + plen) * 4 / 3 + 200);
    if (tok == NULL)
        abort();
    size_t o = b64url((const unsigned char *)in, hlen, tok);
    tok[o++] = '.';
    o += b64url((const unsigned char *)(nul != NULL ? nul + 1 : in + n), plen, tok + o);
    /* signed with the secret under the hash the header's alg names (SHA-256 when it names none) */
    const EVP_MD *md = memmem(in, hlen, "HS512", 5) != NULL   ? EVP_sha512()
                       : memmem(in, hlen, "HS384", 5) != NULL ? EVP_sha384()
                                                              : EVP_sha256();
    unsigned char mac[64];
    unsigned int mac_len = 0;
    HMAC(md, SECRET, (int)strlen(SECRET), (const unsigned char *)tok, o, mac, &mac_len);
    tok[o++] = '.';
    o += b64url(mac, mac_len, tok + o);
    /* "none" in any spelling is never an algorithm */
    json_t *h = json_loadb(in, hlen, 0, NULL);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int none = alg != NULL && strcasecmp(alg, "none") == 0;
    json_decref(h);
    check(tok, o, none);
    free(tok);
    return 0;
}
