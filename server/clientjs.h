/*
 * The browser client, rendered at boot (PROTOCOL.md §8).
 *
 * The templates client/ActionheroWebsocketClient.js.tmpl and .min.js.tmpl (the second is the first minified by
 * tools/minify-client and committed) hold placeholders __AG_<NAME>__ where the configured defaults go. Rendering is
 * substitution only: no build step at boot. The files are written to <public>/<clientJsPath><clientJsName>.js and
 * .min.js and served by the static file handler (ETag, Last-Modified, Cache-Control, JavaScript content type).
 * When the public directory cannot be written (read-only in production), they are written under a fresh directory
 * (mkdtemp, "actiongate-client-XXXXXX", mode 0700) in $RUNTIME_DIRECTORY (or $TMPDIR, or /tmp) instead and served at
 * the same URLs by their own file handlers; that directory is removed at exit. No symlink is followed on the way to the
 * files: a link where a directory of clientJsPath should be sends the files to the fallback directory.
 */
#ifndef AG_CLIENTJS_H
#define AG_CLIENTJS_H

#include "node.h"

/* The directory of the client files (the templates, socket.io.js, legacy/): client/ of the sources the binary was
 * built from while they are there, else where an installation puts it relative to the binary
 * (<prefix>/bin/actiongate, <prefix>/share/actiongate/client), whatever the prefix. The templates are read from the
 * directory the environment variable AG_CLIENT_TEMPLATES names, when set. Borrowed, static. */
const char *ag_client_dir(void);

/* Replaces every __AG_<NAME>__ in tmpl[0..len) with its value from cfg. Returns a malloc'ed NUL-terminated string
 * (owned by the caller, *outlen set) or NULL with one line in errbuf (unknown placeholder, out of memory). */
char *ag_clientjs_substitute(const ag_config_t *cfg, const char *tmpl, size_t len, size_t *outlen, char *errbuf, size_t errlen);

/* Renders both files into public_dir (or, when that cannot be written, into a fresh directory under fallback_root).
 * clientJsName must be a file name (no "/"); clientJsPath may not hold "." or ".." components.
 * On success returns 0 and, if the fallback was used, copies the directory the files went to into fallback_dir
 * (else fallback_dir[0] = '\0'). Nothing is rendered when servers.websocket.clientJsName is empty. */
int ag_clientjs_render(const ag_config_t *cfg, const char *template_dir, const char *public_dir, const char *fallback_root,
                       char *fallback_dir, size_t fallback_len, char *errbuf, size_t errlen);

/* Module hooks (server/modules.c): render at boot and register the fallback paths if needed; remove the fallback
 * directory at exit. */
int ag_clientjs_init(ag_server_t *s, char *errbuf, size_t errlen);
void ag_clientjs_dispose(ag_server_t *s);

#endif
