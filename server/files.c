/*
 * The "file" verb, and the open that static files share with it. Paths are relative to the public directory; the real
 * path (after symlinks) must stay inside it, and only a regular file is ever opened.
 */
#include "files.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ag__mime_type(const char *path)
{
    static const char *const map[][2] = {
        {"html", "text/html"},
        {"htm", "text/html"},
        {"css", "text/css"},
        {"js", "application/javascript"},
        {"mjs", "application/javascript"},
        {"json", "application/json"},
        {"txt", "text/plain"},
        {"md", "text/markdown"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"ico", "image/x-icon"},
        {"webp", "image/webp"},
        {"wasm", "application/wasm"},
        {"map", "application/json"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"csv", "text/csv"},
    };
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot == NULL || (slash != NULL && dot < slash))
        return "application/octet-stream";
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(dot + 1, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

int ag__public_open(const char *public_dir, const char *rel, struct stat *st, char **real_out, int *is_dir)
{
    if (real_out != NULL)
        *real_out = NULL;
    if (is_dir != NULL)
        *is_dir = 0;
    if (rel == NULL || rel[0] == '/' || strlen(rel) > 2048)
        return -1;
    size_t dlen = strlen(public_dir);
    char *joined = malloc(dlen + strlen(rel) + 2);
    if (joined == NULL)
        return -1;
    sprintf(joined, "%s/%s", public_dir, rel);
    /* Symlinks that stay inside are allowed: realpath resolves them, then the walk below opens the resolved path one
     * component at a time without following any link, so a link swapped in after the check is refused, not followed. */
    char *real = realpath(joined, NULL);
    free(joined);
    if (real == NULL || strncmp(real, public_dir, dlen) != 0 || (real[dlen] != '/' && real[dlen] != '\0')) {
        free(real);
        return -1;
    }
    int dfd = open(public_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;
    char *walk = strdup(real + dlen), *name = walk;
    while (dfd != -1 && name != NULL) {
        while (*name == '/')
            name++;
        if (*name == '\0') { /* the public directory itself */
            if (is_dir != NULL)
                *is_dir = 1;
            break;
        }
        char *slash = strchr(name, '/');
        if (slash != NULL) {
            *slash = '\0';
            int next = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            close(dfd);
            dfd = next;
            name = slash + 1;
            continue;
        }
        /* Checked before it is opened: opening a device or a FIFO can have effects or block. O_NONBLOCK covers a FIFO
         * that replaces the file in between; fstat then refuses it. */
        struct stat lst;
        if (fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(lst.st_mode)) {
                if (is_dir != NULL)
                    *is_dir = 1;
            } else if (S_ISREG(lst.st_mode)) {
                fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd != -1 &&
                    (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_dev != lst.st_dev || st->st_ino != lst.st_ino)) {
                    close(fd);
                    fd = -1;
                }
            }
        }
        break;
    }
    if (dfd != -1)
        close(dfd);
    free(walk);
    if (fd != -1 && real_out != NULL)
        *real_out = real;
    else
        free(real);
    return fd;
}

char *ag__public_path(const char *public_dir, const char *rel)
{
    struct stat st;
    char *real;
    if (rel == NULL || rel[0] == '\0')
        return NULL;
    int fd = ag__public_open(public_dir, rel, &st, &real, NULL);
    if (fd == -1)
        return NULL;
    close(fd);
    return real;
}

static json_t *not_found(void)
{
    return json_pack("{s:s,s:n,s:s,s:i}", "error", AG_ERR_FILE_NOT_FOUND, "content", "mime", "text/html", "length",
                     (int)strlen(AG_ERR_FILE_NOT_FOUND));
}

json_t *ag__file_payload(const char *public_dir, const char *rel, size_t maxbytes)
{
    struct stat st;
    char *path = NULL;
    int fd = rel != NULL && rel[0] != '\0' ? ag__public_open(public_dir, rel, &st, &path, NULL) : -1;
    if (fd == -1)
        return not_found();
    char *buf = NULL;
    json_t *content = NULL;
    size_t size = (size_t)st.st_size, got = 0;
    if (size <= maxbytes && (buf = malloc(size + 1)) != NULL) {
        ssize_t n = 1;
        while (got < size && (n = pread(fd, buf + got, size - got, (off_t)got)) > 0)
            got += (size_t)n;
        if (got == size)
            content = json_stringn(buf, size); /* NULL for bytes that are not UTF-8 */
    }
    close(fd);
    free(buf);
    if (content == NULL) {
        free(path);
        return not_found();
    }
    char iso[32];
    ag_iso8601((uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000, iso);
    json_t *r = json_pack("{s:o,s:s,s:I,s:s}", "content", content, "mime", ag__mime_type(path), "length", (json_int_t)size,
                          "lastModified", iso);
    free(path);
    return r;
}
