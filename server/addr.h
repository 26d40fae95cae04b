/*
 * IP addresses and CIDR ranges, for forwarded-address headers and general.trustedProxies. No allocation, no I/O.
 */
#ifndef AG_ADDR_H
#define AG_ADDR_H

#include <stddef.h>
#include <stdint.h>

/* An IPv4 or IPv6 address in binary; an IPv4-mapped IPv6 address is folded to IPv4. */
typedef struct st_ag_addr_t {
    int family; /* AF_INET or AF_INET6 */
    unsigned char bytes[16];
} ag_addr_t;

/* Parses s[0..len) (spaces and tabs around are ignored) as an address, optionally "[v6]", "[v6]:port" or "v4:port":
 * into out (may be NULL), its canonical text into text (64 bytes, may be NULL: IPv6 lower case and compressed, mapped
 * IPv4 as IPv4) and the port into port (may be NULL; 0 when none). Returns 0, or AG_EINVAL for anything else (a zone
 * id, a port out of 1..65535, a name). */
int ag_addr_parse(const char *s, size_t len, ag_addr_t *out, char *text, int *port);
/* spec is "addr" or "addr/prefix" (no port, no brackets). With addr NULL: 1 when spec is well formed. Else 1 when addr
 * falls in it, 0 when not. AG_EINVAL when spec is malformed. */
int ag_addr_match(const char *spec, const ag_addr_t *addr);

/* A base URL split up: http://host[:port][/path]. host is NUL-terminated (brackets of an IPv6 literal removed), path
 * has no trailing slash ("" for none). 0, or AG_EINVAL (anything else, https included). */
typedef struct st_ag_url_t {
    char host[256];
    uint16_t port;
    char path[512];
} ag_url_t;
int ag_url_parse(const char *url, ag_url_t *out);

#endif
