/*
 * Static files: the public directory under servers.web.urlPathForFiles (and at /), and the rendered browser client
 * when it lives in a fallback directory (server/clientjs.c).
 *
 * Our own handler rather than h2o's file handler, which follows symlinks anywhere, opens a FIFO with a blocking open
 * (the loop stops) and takes the content type from a name cut short at a decoded NUL. Here every file is opened by
 * ag__public_open (server/files.h): a regular file inside the directory, never blocking. Answers: GET and HEAD (405
 * otherwise), ETag ("<mtime hex>-<size hex>") and Last-Modified with 304 for If-None-Match / If-Modified-Since, one
 * byte range (206; several ranges get the whole file), index.html for a directory and a 301 to the path with its
 * slash for a directory named without it, the content type from h2o's MIME map by the real file's extension, and
 * X-Content-Type-Options: nosniff on everything. Cache-Control comes from the expires filter the caller registers.
 */
#ifndef AG_STATIC_H
#define AG_STATIC_H

#include "node.h"

/* Serves the files under dir (canonical, as realpath gives it; copied) at pc's path. */
void ag_static_register_dir(h2o_pathconf_t *pc, const char *dir);
/* Serves the one regular file at path (copied; opened without following a symlink) at exactly pc's path, as mime. */
void ag_static_register_file(h2o_pathconf_t *pc, const char *path, const char *mime);

#endif
