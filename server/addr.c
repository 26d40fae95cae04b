/*
 * Addresses as forwarded headers and general.trustedProxies write them.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "common.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int ag_addr_parse(const char *s, size_t len, ag_addr_t *out, char *text, int *port)
{
    while (len > 0 && is_space(*s))
        s++, len--;
    while (len > 0 && is_space(s[len - 1]))
        len--;
    const char *host = s, *portstr = NULL;
    size_t hlen = len, plen = 0;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return AG_EINVAL;
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t rest = len - (size_t)(close - s) - 1;
        if (rest != 0) {
            if (close[1] != ':')
                return AG_EINVAL;
            portstr = close + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        /* one colon: IPv4 with a port; more: a bare IPv6 address */
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
            hlen = (size_t)(colon - s);
            portstr = colon + 1;
            plen = len - hlen - 1;
        }
    }
    int p = 0;
    if (portstr != NULL) {
        if (plen == 0 || plen > 5)
            return AG_EINVAL;
        for (size_t i = 0; i < plen; i++) {
            if (portstr[i] < '0' || portstr[i] > '9')
                return AG_EINVAL;
            p = p * 10 + (portstr[i] - '0');
        }
        if (p < 1 || p > 65535)
            return AG_EINVAL;
    }
    char buf[64];
    if (hlen == 0 || hlen >= sizeof(buf))
        return AG_EINVAL;
    memcpy(buf, host, hlen);
    buf[hlen] = '\0';
    ag_addr_t a;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, buf, a.bytes) == 1) {
        a.family = AF_INET;
    } else if (inet_pton(AF_INET6, buf, a.bytes) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        a.family = AF_INET6;
        if (memcmp(a.bytes, mapped, sizeof(mapped)) == 0) {
            memmove(a.bytes, a.bytes + 12, 4);
            memset(a.bytes + 4, 0, 12);
            a.family = AF_INET;
        }
    } else {
        return AG_EINVAL;
    }
    if (text != NULL && inet_ntop(a.family, a.bytes, text, 64) == NULL)
        return AG_EINVAL;
    if (out != NULL)
        *out = a;
    if (port != NULL)
        *port = p;
    return 0;
}

int ag_addr_match(const char *spec, const ag_addr_t *addr)
{
    const char *slash = strchr(spec, '/');
    ag_addr_t net;
    int port;
    /* a port or brackets have no place in a proxy address */
    if (strchr(spec, '[') != NULL ||
        ag_addr_parse(spec, slash != NULL ? (size_t)(slash - spec) : strlen(spec), &net, NULL, &port) != 0 || port != 0)
        return AG_EINVAL;
    int bits = net.family == AF_INET ? 32 : 128;
    if (slash != NULL) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || b > bits)
            return AG_EINVAL;
        bits = (int)b;
    }
    if (addr == NULL)
        return 1;
    if (addr->family != net.family)
        return 0;
    int full = bits / 8, rest = bits % 8;
    if (memcmp(addr->bytes, net.bytes, (size_t)full) != 0)
        return 0;
    if (rest != 0) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((addr->bytes[full] & mask) != (net.bytes[full] & mask))
            return 0;
    }
    return 1;
}

int ag_url_parse(const char *url, ag_url_t *out)
{
    static const char scheme[] = "http://";
    if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return AG_EINVAL;
    const char *p = url + sizeof(scheme) - 1, *host, *host_end;
    if (*p == '[') {
        host = p + 1;
        if ((host_end = strchr(host, ']')) == NULL)
            return AG_EINVAL;
        p = host_end + 1;
    } else {
        host = p;
        while (*p != '\0' && *p != ':' && *p != '/')
            p++;
        host_end = p;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return AG_EINVAL;
    for (const char *c = host; c < host_end; c++)
        if (!(('a' <= *c && *c <= 'z') || ('A' <= *c && *c <= 'Z') || ('0' <= *c && *c <= '9') || *c == '.' || *c == '-' ||
              *c == ':' || *c == '_'))
            return AG_EINVAL;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = 80;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return AG_EINVAL;
        out->port = (uint16_t)port;
        p = end;
    }
    if (*p != '\0' && *p != '/')
        return AG_EINVAL;
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(out->path))
        return AG_EINVAL;
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == '?' || p[i] == '#' || (unsigned char)p[i] >= 0x7f)
            return AG_EINVAL;
    memcpy(out->path, p, plen);
    out->path[plen] = '\0';
    return 0;
}
