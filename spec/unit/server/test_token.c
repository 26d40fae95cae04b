/* The token verifier (server/token.c): every refusal it owes, the claims it passes, and the configurations it
 * refuses. Tokens are made with libjwt's encoder, with OpenSSL keys generated here, and by hand where a token must be
 * one no encoder writes (alg none, a forged or tampered part, duplicate keys). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jwt.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include "config.h"
#include "token.h"

#define SECRET "0123456789abcdef0123456789abcdef-test"
#define NOW 1700000000

static char rsa_pub_path[64], ec_pub_path[64];
static char *rsa_priv_pem, *ec_priv_pem, *rsa_pub_pem;

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)n + 1);
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return out;
}

/* Writes the public half to a temporary file (path) and returns the private PEM. */
static char *make_key(EVP_PKEY *key, char *path, char **pub_text)
{
    BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(priv, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_PUBKEY(pub, key), 1);
    char *priv_text = bio_text(priv), *pub_pem = bio_text(pub);
    strcpy(path, "/tmp/ag_test_token_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pub_pem, strlen(pub_pem)), (ssize_t)strlen(pub_pem));
    close(fd);
    if (pub_text != NULL)
        *pub_text = pub_pem;
    else
        free(pub_pem);
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(key);
    return priv_text;
}

static int setup(void **state)
{
    EVP_PKEY *rsa = NULL, *ec = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    EVP_PKEY_keygen_init(ctx);
    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048);
    EVP_PKEY_keygen(ctx, &rsa);
    EVP_PKEY_CTX_free(ctx);
    ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    EVP_PKEY_keygen_init(ctx);
    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1);
    EVP_PKEY_keygen(ctx, &ec);
    EVP_PKEY_CTX_free(ctx);
    assert_non_null(rsa);
    assert_non_null(ec);
    rsa_priv_pem = make_key(rsa, rsa_pub_path, &rsa_pub_pem);
    ec_priv_pem = make_key(ec, ec_pub_path, NULL);
    return 0;
}

static int teardown(void **state)
{
    unlink(rsa_pub_path);
    unlink(ec_pub_path);
    free(rsa_priv_pem);
    free(ec_priv_pem);
    free(rsa_pub_pem);
    return 0;
}

static ag_config_t *config(const char *yaml)
{
    char err[512] = "";
    ag_config_t *c = ag_config_load_string(yaml, "test.yaml", err, sizeof(err));
    if (c == NULL)
        fail_msg("config: %s", err);
    return c;
}

static ag_token_verifier_t *verifier(const char *yaml)
{
    ag_config_t *c = config(yaml);
    char err[512] = "";
    ag_token_verifier_t *v = ag_token_verifier_create(c, err, sizeof(err));
    if (v == NULL)
        fail_msg("verifier: %s", err);
    ag_config_destroy(c);
    return v;
}

static ag_token_verifier_t *hs_verifier(void)
{
    return verifier("tokens:\n  secret: \"" SECRET "\"\n");
}

static ag_token_verifier_t *key_verifier(const char *path, const char *extra)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "tokens:\n  publicKeyFile: \"%s\"\n%s", path, extra);
    return verifier(yaml);
}

/* A token signed by libjwt: claims as JSON text, alg with key (len 0: a PEM string). */
static char *sign(jwt_alg_t alg, const char *key, size_t key_len, const char *claims)
{
    jwt_t *jwt;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)(key_len != 0 ? key_len : strlen(key))), 0);
    char *out = jwt_encode_str(jwt);
    assert_non_null(out);
    jwt_free(jwt);
    return out;
}

static ag_token_err_t verify(ag_token_verifier_t *v, const char *token, int64_t now, json_t **claims)
{
    json_t *ignored = NULL;
    ag_token_err_t err = ag_token_verify(v, token, strlen(token), now, claims != NULL ? claims : &ignored);
    json_decref(ignored);
    return err;
}

static void b64url(const unsigned char *in, size_t n, char *out)
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
    out[o] = '\0';
}

/* header.payload signed with HMAC-SHA256 under key (any bytes), made by hand. */
static void hand_hs256(const char *header, const char *payload, const void *key, size_t key_len, char *out)
{
    char h[1024], p[1024], sig[128];
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)payload, strlen(payload), p);
    sprintf(out, "%s.%s", h, p);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)out, strlen(out), mac, &mac_len);
    b64url(mac, mac_len, sig);
    strcat(out, ".");
    strcat(out, sig);
}

static void test_hs256_valid(void **state)
{
    ag_token_verifier_t *v = hs_verifier();
    char *t = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), "{\"sub\":\"ann\",\"exp\":1700000060,\"role\":\"admin\"}");
    json_t *claims = NULL;
    assert_int_equal(verify(v, t, NOW, &claims), AG_TOKEN_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "ann");
    assert_string_equal(json_string_value(json_object_get(claims, "role")), "admin");
    json_decref(claims);
    /* HS384 and HS512 are allowed by default with a secret */
    char *t2 = sign(JWT_ALG_HS512, SECRET, strlen(SECRET), "{\"sub\":\"ann\"}");
    assert_int_equal(verify(v, t2, NOW, &claims), AG_TOKEN_OK);
    json_decref(claims);
    free(t);
    free(t2);
    ag_token_verifier_destroy(v);
}

static void test_rs256_and_es256_valid(void **state)
{
    ag_token_verifier_t *rs = key_verifier(rsa_pub_path, ""), *es = key_verifier(ec_pub_path, "");
    char *t = sign(JWT_ALG_RS256, rsa_priv_pem, 0, "{\"sub\":\"bob\"}");
    char *e = sign(JWT_ALG_ES256, ec_priv_pem, 0, "{\"sub\":\"eve\"}");
    json_t *claims = NULL;
    assert_int_equal(verify(rs, t, NOW, &claims), AG_TOKEN_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "bob");
    json_decref(claims);
    assert_int_equal(verify(es, e, NOW, &claims), AG_TOKEN_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "eve");
    json_decref(claims);
    /* the other family's key does not check it: an RSA verifier allows RS* only */
    assert_int_equal(verify(rs, e, NOW, NULL), AG_TOKEN_ALG);
    assert_int_equal(verify(es, t, NOW, NULL), AG_TOKEN_ALG);
    free(t);
    free(e);
    ag_token_verifier_destroy(rs);
    ag_token_verifier_destroy(es);
}

static void test_exp_nbf_leeway(void **state)
{
    ag_token_verifier_t *v = hs_verifier();
    char *expired = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), "{\"sub\":\"ann\",\"exp\":1700000000}");
    char *later = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), "{\"sub\":\"ann\",\"nbf\":1700000030}");
    json_t *claims = (json_t *)1;
    assert_int_equal(verify(v, expired, NOW, &claims), AG_TOKEN_EXPIRED); /* exp == now: expired (RFC 7519 4.1.4) */
    assert_null(claims);
    assert_int_equal(verify(v, expired, NOW - 1, NULL), AG_TOKEN_OK);
    assert_int_equal(verify(v, later, NOW, NULL), AG_TOKEN_NOT_YET);
    assert_int_equal(verify(v, later, NOW + 30, NULL), AG_TOKEN_OK);
    ag_token_verifier_destroy(v);
    v = verifier("tokens:\n  secret: \"" SECRET "\"\n  leeway: 60\n");
    assert_int_equal(verify(v, expired, NOW + 59, NULL), AG_TOKEN_OK);
    assert_int_equal(verify(v, expired, NOW + 60, NULL), AG_TOKEN_EXPIRED);
    assert_int_equal(verify(v, later, NOW - 30, NULL), AG_TOKEN_OK);
    ag_token_verifier_destroy(v);
    /* claims of the wrong type are malformed, not ignored */
    v = hs_verifier();
    char *bad = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), "{\"sub\":\"ann\",\"exp\":\"tomorrow\"}");
    char *badsub = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), "{\"sub\":42}");
    assert_int_equal(verify(v, bad, NOW, NULL), AG_TOKEN_MALFORMED);
    assert_int_equal(verify(v, badsub, NOW, NULL), AG_TOKEN_MALFORMED);
    ag_token_verifier_destroy(v);
    free(expired);
    free(later);
    free(bad);
    free(badsub);
}

static void test_alg_none_refused(void **state)
{
    ag_token_verifier_t *v = hs_verifier();
    char h[128], p[128], t[512];
    const char *header = "{\"alg\":\"none\",\"typ\":\"JWT\"}", *payload = "{\"sub\":\"admin\"}";
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)payload, strlen(payload), p);
    sprintf(t, "%s.%s.", h, p);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_ALG);
    /* also spelled otherwise, and with a signature that is not empty */
    header = "{\"alg\":\"None\"}";
    b64url((const unsigned char *)header, strlen(header), h);
    sprintf(t, "%s.%s.AAAA", h, p);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_ALG);
    /* an HS256 header with no signature */
    hand_hs256("{\"alg\":\"HS256\"}", payload, SECRET, strlen(SECRET), t);
    *(strrchr(t, '.') + 1) = '\0';
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_SIGNATURE);
    ag_token_verifier_destroy(v);
}

/* The classic confusion: an HS256 token whose HMAC key is the server's RSA public key (which is public). */
static void test_key_confusion_refused(void **state)
{
    ag_token_verifier_t *v = key_verifier(rsa_pub_path, "");
    char t[2048];
    hand_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"admin\"}", rsa_pub_pem, strlen(rsa_pub_pem), t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_ALG);
    ag_token_verifier_destroy(v);
    /* with both a secret and a key, HS* is checked with the secret only, never the key */
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "tokens:\n  secret: \"" SECRET "\"\n  publicKeyFile: \"%s\"\n", rsa_pub_path);
    v = verifier(yaml);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_SIGNATURE);
    hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"admin\"}", SECRET, strlen(SECRET), t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_OK);
    ag_token_verifier_destroy(v);
}

static void test_forged_and_tampered(void **state)
{
    ag_token_verifier_t *v = hs_verifier();
    char t[1024];
    /* signed with another secret */
    hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"ann\"}", "another secret that is long enough!!", 36, t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_SIGNATURE);
    /* a valid token whose payload is swapped for another */
    hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"ann\"}", SECRET, strlen(SECRET), t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_OK);
    char p[128], forged[1024];
    b64url((const unsigned char *)"{\"sub\":\"root\"}", 14, p);
    char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
    sprintf(forged, "%.*s.%s%s", (int)(dot1 - t), t, p, dot2);
    assert_int_equal(verify(v, forged, NOW, NULL), AG_TOKEN_SIGNATURE);
    /* one bit of the signature flipped */
    strcpy(forged, t);
    char *last = forged + strlen(forged) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_equal(verify(v, forged, NOW, NULL), AG_TOKEN_SIGNATURE);
    ag_token_verifier_destroy(v);
}

static void test_malformed(void **state)
{
    ag_token_verifier_t *v = hs_verifier();
    char t[1024];
    const char *bad[] = {
        "", ".", "..", "a.b", "a.b.c.d", "!!!.e30.AAAA", "e30.e30.AAAA" /* {} has no alg */, "W10.e30.AAAA" /* [] */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ag_token_err_t err = verify(v, bad[i], NOW, NULL);
        if (err != AG_TOKEN_MALFORMED && err != AG_TOKEN_ALG)
            fail_msg("%s: %s", bad[i], ag_token_strerror(err));
    }
    /* duplicate keys in the header: refused, whichever one libjwt would have read */
    hand_hs256("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"sub\":\"ann\"}", SECRET, strlen(SECRET), t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_MALFORMED);
    hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"ann\",\"sub\":\"root\"}", SECRET, strlen(SECRET), t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_MALFORMED);
    /* a crit header names extensions this verifier cannot honour */
    hand_hs256("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{\"sub\":\"ann\"}", SECRET, strlen(SECRET), t);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_CRIT);
    /* a NUL inside */
    hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"ann\"}", SECRET, strlen(SECRET), t);
    json_t *claims;
    size_t n = strlen(t);
    t[n - 3] = '\0';
    assert_int_equal(ag_token_verify(v, t, n, NOW, &claims), AG_TOKEN_SIGNATURE);
    ag_token_verifier_destroy(v);
}

static void test_too_large(void **state)
{
    ag_token_verifier_t *v = verifier("tokens:\n  secret: \"" SECRET "\"\n  maxBytes: 200\n");
    char claims[400], *t;
    snprintf(claims, sizeof(claims), "{\"sub\":\"%0200d\"}", 7);
    t = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), claims);
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_TOO_LARGE);
    free(t);
    t = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), "{\"sub\":\"x\"}");
    assert_int_equal(verify(v, t, NOW, NULL), AG_TOKEN_OK);
    free(t);
    ag_token_verifier_destroy(v);
}

static void test_audience_issuer(void **state)
{
    ag_token_verifier_t *v = verifier("tokens:\n  secret: \"" SECRET "\"\n  audience: chat\n  issuer: https://id.example\n");
    struct {
        const char *claims;
        ag_token_err_t want;
    } cases[] = {
        {"{\"aud\":\"chat\",\"iss\":\"https://id.example\"}", AG_TOKEN_OK},
        {"{\"aud\":[\"mail\",\"chat\"],\"iss\":\"https://id.example\"}", AG_TOKEN_OK},
        {"{\"aud\":\"mail\",\"iss\":\"https://id.example\"}", AG_TOKEN_AUDIENCE},
        {"{\"iss\":\"https://id.example\"}", AG_TOKEN_AUDIENCE},
        {"{\"aud\":\"chat\",\"iss\":\"https://evil.example\"}", AG_TOKEN_ISSUER},
        {"{\"aud\":\"chat\"}", AG_TOKEN_ISSUER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), cases[i].claims);
        ag_token_err_t err = verify(v, t, NOW, NULL);
        if (err != cases[i].want)
            fail_msg("%s: %s", cases[i].claims, ag_token_strerror(err));
        free(t);
    }
    ag_token_verifier_destroy(v);
}

static void config_error(const char *yaml, const char *expect)
{
    char err[512] = "";
    ag_config_t *c = ag_config_load_string(yaml, "t.yaml", err, sizeof(err));
    ag_token_verifier_t *v = NULL;
    if (c != NULL) {
        v = ag_token_verifier_create(c, err, sizeof(err));
        ag_config_destroy(c);
    }
    if (v != NULL)
        fail_msg("accepted: %s", yaml);
    if (strstr(err, expect) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, expect);
}

static void test_config_refusals(void **state)
{
    config_error("tokens:\n  secret: \"" SECRET "\"\n  algorithms: [HS256, none]\n", "\"none\" can never be allowed");
    config_error("tokens:\n  secret: \"" SECRET "\"\n  algorithms: [NONE]\n", "\"none\" can never be allowed");
    config_error("tokens:\n  secret: \"short\"\n", "at least 32 bytes");
    config_error("tokens:\n  secret: \"" SECRET "\"\n  algorithms: [RS256]\n", "RS256 needs tokens.publicKeyFile");
    config_error("tokens:\n  require: true\n", "need tokens.secret or tokens.publicKeyFile");
    config_error("tokens:\n  publicKeyFile: /nonexistent/key.pem\n", "cannot open");
    config_error("tokens:\n  secret: \"" SECRET "\"\n  algorithms: [PS256]\n", "unknown algorithm PS256");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "tokens:\n  publicKeyFile: \"%s\"\n  algorithms: [RS256]\n", ec_pub_path);
    config_error(yaml, "RS256 cannot be checked");
    /* a file that holds no public key */
    char path[] = "/tmp/ag_test_token_bad_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a key\n", 10), 10);
    close(fd);
    snprintf(yaml, sizeof(yaml), "tokens:\n  publicKeyFile: \"%s\"\n", path);
    config_error(yaml, "holds no RSA or EC public key");
    unlink(path);
}

static void test_client_errors(void **state)
{
    /* the client is told no more than "invalid token" about forgeries */
    assert_string_equal(ag_token_client_error(AG_TOKEN_SIGNATURE), "invalid token");
    assert_string_equal(ag_token_client_error(AG_TOKEN_ALG), "invalid token");
    assert_string_equal(ag_token_client_error(AG_TOKEN_MALFORMED), "invalid token");
    assert_string_equal(ag_token_client_error(AG_TOKEN_EXPIRED), "token expired");
    assert_string_equal(ag_token_client_error(AG_TOKEN_MISSING), "a token is required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_valid),
        cmocka_unit_test(test_rs256_and_es256_valid),
        cmocka_unit_test(test_exp_nbf_leeway),
        cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_key_confusion_refused),
        cmocka_unit_test(test_forged_and_tampered),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_audience_issuer),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_client_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
