/*
 * The "file" verb: a file from the node's public directory as a JSON reply (server/files.c).
 */
#ifndef AG_FILES_H
#define AG_FILES_H

#include <jansson.h>
#include "node.h"

#define AG_ERR_FILE_NOT_FOUND "that file is not found"

/* MIME type by file extension ("application/octet-stream" when unknown). */
const char *ag__mime_type(const char *path);
/* Resolves rel inside public_dir: NULL unless the real path (symlinks resolved) is a regular file under public_dir.
 * Absolute paths and ".." escapes fail. The result is malloc'ed. */
char *ag__public_path(const char *public_dir, const char *rel);
/* The reply payload: {content, mime, length, lastModified} or {error, content:null, mime:"text/html", length:22}.
 * New reference. Reads synchronously; files over maxbytes count as not found. */
json_t *ag__file_payload(const char *public_dir, const char *rel, size_t maxbytes);

#endif
