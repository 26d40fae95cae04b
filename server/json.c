#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Deeper documents are jansson's (it allows 2048 levels); a client message is rarely more than 3 deep. */
#define FAST_MAX_DEPTH 64

/* Bytes that stand for themselves inside a JSON string, in both directions: ASCII from the space to DEL but '"' and '\\'. */
static const unsigned char plain[256] = {
    ['\x20' ... '\x21'] = 1,
    ['\x23' ... '\x5b'] = 1,
    ['\x5d' ... '\x7f'] = 1,
};

/* --- parser --- */

typedef struct {
    const unsigned char *p, *end;
    int reject_duplicates;
} parser_t;

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF) starting
 * at p, or 0. The same rules as jansson's check, so a string taken here is one jansson takes. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Scans a string after its opening quote. Without escapes *out points into the input; with the short escapes (\" \\
 * \/ \b \f \n \r \t) the decoded text is written to scratch (which must hold the raw length). Returns the length, or
 * -1 when the fast path does not take it (\u escapes, control bytes, bad UTF-8, no closing quote). */
static ptrdiff_t scan_string(parser_t *ps, const char **out, char **scratch, char *stack, size_t stack_size)
{
    const unsigned char *start = ps->p, *p = ps->p, *end = ps->end;
    while (p < end && plain[*p])
        p++;
    if (p < end && *p == '"') { /* the common case: plain ASCII, nothing to decode */
        *out = (const char *)start;
        ps->p = p + 1;
        return p - start;
    }
    /* a second, careful pass, decoding escapes into scratch, which needs at most the raw length */
    while (p < end && *p != '"') {
        if (*p == '\\' && end - p < 2)
            return -1;
        p += *p == '\\' ? 2 : 1;
    }
    if (p >= end)
        return -1;
    size_t cap = (size_t)(p - start);
    char *dst = stack;
    if (cap > stack_size) {
        if ((*scratch = malloc(cap)) == NULL)
            return -1;
        dst = *scratch;
    }
    size_t n = 0;
    p = start;
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            *out = dst;
            ps->p = p + 1;
            return (ptrdiff_t)n;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (p + 1 >= end)
                return -1;
            char e;
            switch (p[1]) {
            case '"':
                e = '"';
                break;
            case '\\':
                e = '\\';
                break;
            case '/':
                e = '/';
                break;
            case 'b':
                e = '\b';
                break;
            case 'f':
                e = '\f';
                break;
            case 'n':
                e = '\n';
                break;
            case 'r':
                e = '\r';
                break;
            case 't':
                e = '\t';
                break;
            default:
                return -1; /* \uXXXX (surrogates, NUL) and invalid escapes: jansson's */
            }
            dst[n++] = e;
            p += 2;
            continue;
        }
        if (c < 0x80) {
            dst[n++] = (char)c;
            p++;
            continue;
        }
        size_t l = utf8_len(p, end);
        if (l == 0)
            return -1;
        memcpy(dst + n, p, l);
        n += l;
        p += l;
    }
    return -1;
}

static json_t *parse_value(parser_t *ps, int depth);

static json_t *parse_object(parser_t *ps, int depth)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        if (ps->p >= ps->end || *ps->p != '"')
            goto fail;
        ps->p++;
        char stack[128], *heap = NULL;
        const char *key;
        ptrdiff_t klen = scan_string(ps, &key, &heap, stack, sizeof(stack));
        if (klen < 0) {
            free(heap);
            goto fail;
        }
        skip_ws(ps);
        json_t *v = NULL;
        if (ps->p < ps->end && *ps->p == ':') {
            ps->p++;
            skip_ws(ps);
            v = parse_value(ps, depth + 1);
        }
        int bad = v == NULL;
        if (!bad && ps->reject_duplicates && json_object_getn(obj, key, (size_t)klen) != NULL) {
            json_decref(v);
            bad = 1;
        } else if (!bad) {
            bad = json_object_setn_new_nocheck(obj, key, (size_t)klen, v) != 0; /* takes v even when it fails */
        }
        free(heap);
        if (bad)
            goto fail;
        skip_ws(ps);
        if (ps->p >= ps->end)
            goto fail;
        if (*ps->p == '}') {
            ps->p++;
            return obj;
        }
        if (*ps->p != ',')
            goto fail;
        ps->p++;
        skip_ws(ps);
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *parse_array(parser_t *ps, int depth)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        json_t *v = parse_value(ps, depth + 1);
        if (v == NULL || json_array_append_new(arr, v) != 0)
            goto fail;
        skip_ws(ps);
        if (ps->p >= ps->end)
            goto fail;
        if (*ps->p == ']') {
            ps->p++;
            return arr;
        }
        if (*ps->p != ',')
            goto fail;
        ps->p++;
        skip_ws(ps);
    }
fail:
    json_decref(arr);
    return NULL;
}

/* Integers of at most 18 digits (they cannot overflow); reals and longer integers are jansson's. */
static json_t *parse_number(parser_t *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const unsigned char *digits = p;
    long long v = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 18)
        v = v * 10 + (*p++ - '0');
    size_t nd = (size_t)(p - digits);
    if (nd == 0 || nd > 18 || (nd > 1 && digits[0] == '0'))
        return NULL;
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
        return NULL;
    ps->p = p;
    return json_integer(neg ? -v : v);
}

static int literal(parser_t *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return 0;
    ps->p += n;
    return 1;
}

static json_t *parse_value(parser_t *ps, int depth)
{
    if (ps->p >= ps->end || depth > FAST_MAX_DEPTH)
        return NULL;
    switch (*ps->p) {
    case '{':
        ps->p++;
        return parse_object(ps, depth);
    case '[':
        ps->p++;
        return parse_array(ps, depth);
    case '"': {
        ps->p++;
        char stack[256], *heap = NULL;
        const char *s;
        ptrdiff_t n = scan_string(ps, &s, &heap, stack, sizeof(stack));
        json_t *v = n >= 0 ? json_stringn_nocheck(s, (size_t)n) : NULL;
        free(heap);
        return v;
    }
    case 't':
        return literal(ps, "true", 4) ? json_true() : NULL;
    case 'f':
        return literal(ps, "false", 5) ? json_false() : NULL;
    case 'n':
        return literal(ps, "null", 4) ? json_null() : NULL;
    default:
        return (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) ? parse_number(ps) : NULL;
    }
}

static json_t *parse(const char *data, size_t len, int reject_duplicates)
{
    parser_t ps = {(const unsigned char *)data, (const unsigned char *)data + len, reject_duplicates};
    skip_ws(&ps);
    json_t *v = parse_value(&ps, 1);
    if (v == NULL)
        return NULL;
    /* jansson reads past the value: a letter or digit right after a literal or a number makes it refuse the input */
    skip_ws(&ps);
    if (ps.p != ps.end) {
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *ag_json_parse_fast(const char *data, size_t len)
{
    return parse(data, len, 0);
}

json_t *ag_json_loadb(const char *data, size_t len, size_t flags, json_error_t *err)
{
    if ((flags & ~(size_t)(JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)) == 0) {
        json_t *v = parse(data, len, (flags & JSON_REJECT_DUPLICATES) != 0);
        if (v != NULL && ((flags & JSON_DECODE_ANY) || json_is_object(v) || json_is_array(v)))
            return v;
        json_decref(v);
    }
    return json_loadb(data, len, flags, err);
}

/* --- encoder --- */

typedef struct {
    char *buf;
    size_t size, len; /* len counts on past size, so the caller learns how much room it needs */
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_c(out_t *o, char c)
{
    if (o->len < o->size)
        o->buf[o->len] = c;
    o->len++;
}

/* As jansson writes a string without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH; 0 on invalid UTF-8 (jansson fails). */
static int put_string(out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    put_c(o, '"');
    while (p < end) {
        unsigned c = *p;
        if (plain[c]) {
            p++;
            continue;
        }
        size_t l = 1;
        if (c >= 0x80 && (l = utf8_len(p, end)) == 0)
            return 0;
        if (c >= 0x80) {
            p += l;
            continue;
        }
        put(o, (const char *)run, (size_t)(p - run));
        switch (c) {
        case '"':
            put(o, "\\\"", 2);
            break;
        case '\\':
            put(o, "\\\\", 2);
            break;
        case '\b':
            put(o, "\\b", 2);
            break;
        case '\f':
            put(o, "\\f", 2);
            break;
        case '\n':
            put(o, "\\n", 2);
            break;
        case '\r':
            put(o, "\\r", 2);
            break;
        case '\t':
            put(o, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, u, 6);
        }
        }
        run = ++p;
    }
    put(o, (const char *)run, (size_t)(p - run));
    put_c(o, '"');
    return 1;
}

/* 0 when jansson must encode the whole value instead (so its result, or its refusal, is the answer) */
static int encode(out_t *o, const json_t *v, int depth)
{
    if (depth > FAST_MAX_DEPTH)
        return 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        put_c(o, '{');
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it != NULL; it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                put_c(o, ',');
            first = 0;
            if (!put_string(o, json_object_iter_key(it), json_object_iter_key_len(it)))
                return 0;
            put_c(o, ':');
            if (!encode(o, json_object_iter_value(it), depth + 1))
                return 0;
        }
        put_c(o, '}');
        return 1;
    }
    case JSON_ARRAY: {
        put_c(o, '[');
        for (size_t i = 0, n = json_array_size(v); i < n; i++) {
            if (i != 0)
                put_c(o, ',');
            if (!encode(o, json_array_get(v, i), depth + 1))
                return 0;
        }
        put_c(o, ']');
        return 1;
    }
    case JSON_STRING:
        return put_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        char b[24];
        json_int_t x = json_integer_value(v);
        unsigned long long u = x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x;
        size_t i = sizeof(b);
        do
            b[--i] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (x < 0)
            b[--i] = '-';
        put(o, b + i, sizeof(b) - i);
        return 1;
    }
    case JSON_REAL: {
        char b[64]; /* jansson's own formatting of reals, a bare value encoded alone */
        size_t n = json_dumpb(v, b, sizeof(b), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        if (n == 0 || n > sizeof(b))
            return 0;
        put(o, b, n);
        return 1;
    }
    case JSON_TRUE:
        put(o, "true", 4);
        return 1;
    case JSON_FALSE:
        put(o, "false", 5);
        return 1;
    case JSON_NULL:
        put(o, "null", 4);
        return 1;
    }
    return 0;
}

size_t ag_json_dumpb(const json_t *v, char *buf, size_t size)
{
    if (v == NULL)
        return 0;
    out_t o = {buf, size, 0};
    if (encode(&o, v, 1))
        return o.len;
    return json_dumpb(v, buf, size, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}
