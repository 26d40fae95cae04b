/*
 * The "file" verb: a file from the node's public directory as a JSON reply (server/files.c).
 */
#ifndef AG_FILES_H
#define AG_FILES_H

#include <jansson.h>
#include <sys/stat.h>
#include "node.h"

#define AG_ERR_FILE_NOT_FOUND "that file is not found"

/* MIME type by file extension ("application/octet-stream" when unknown). */
const char *ag__mime_type(const char *path);
/* Opens rel (relative, NUL-terminated) inside public_dir (a canonical path) for reading: only a regular file whose real
 * path, symlinks resolved, lies under public_dir. The open follows no symlink (a link swapped in after the check is
 * refused) and never blocks (a FIFO or device is never opened for what it is). Returns the fd (O_CLOEXEC, owned by the
 * caller) with *st filled and, when real is not NULL, the malloc'ed real path in *real; or -1. When rel names a
 * directory inside public_dir (rel "" is public_dir itself), returns -1 with *is_dir = 1 (is_dir may be NULL). */
int ag__public_open(const char *public_dir, const char *rel, struct stat *st, char **real, int *is_dir);
/* The real path of the regular file rel names inside public_dir (rules of ag__public_open), malloc'ed; or NULL. */
char *ag__public_path(const char *public_dir, const char *rel);
/* The reply payload: {content, mime, length, lastModified} or {error, content:null, mime:"text/html", length:22}.
 * New reference. Reads synchronously; files over maxbytes count as not found. */
json_t *ag__file_payload(const char *public_dir, const char *rel, size_t maxbytes);

#endif
