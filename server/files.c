/*
 * The "file" verb. Paths are relative to the public directory; the real path (after symlinks) must stay inside it.
 */
#include "files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

char *ag__public_path(const char *public_dir, const char *rel)
{
    if (rel == NULL || rel[0] == '\0' || rel[0] == '/' || strlen(rel) > 2048)
        return NULL;
    size_t dlen = strlen(public_dir);
    char *joined = malloc(dlen + strlen(rel) + 2);
    if (joined == NULL)
        return NULL;
    sprintf(joined, "%s/%s", public_dir, rel);
    char *real = realpath(joined, NULL);
    free(joined);
    struct stat st;
    if (real == NULL || strncmp(real, public_dir, dlen) != 0 || real[dlen] != '/' || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(real);
        return NULL;
    }
    return real;
}

static json_t *not_found(void)
{
    return json_pack("{s:s,s:n,s:s,s:i}", "error", AG_ERR_FILE_NOT_FOUND, "content", "mime", "text/html", "length",
                     (int)strlen(AG_ERR_FILE_NOT_FOUND));
}

json_t *ag__file_payload(const char *public_dir, const char *rel, size_t maxbytes)
{
    char *path = ag__public_path(public_dir, rel);
    if (path == NULL)
        return not_found();
    FILE *fp = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    json_t *content = NULL;
    if (fp != NULL && fstat(fileno(fp), &st) == 0 && (size_t)st.st_size <= maxbytes &&
        (buf = malloc((size_t)st.st_size + 1)) != NULL && fread(buf, 1, (size_t)st.st_size, fp) == (size_t)st.st_size)
        content = json_stringn(buf, (size_t)st.st_size); /* NULL for bytes that are not UTF-8 */
    if (fp != NULL)
        fclose(fp);
    free(buf);
    if (content == NULL) {
        free(path);
        return not_found();
    }
    char iso[32];
    ag_iso8601((uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000, iso);
    json_t *r = json_pack("{s:o,s:s,s:I,s:s}", "content", content, "mime", ag__mime_type(path), "length", (json_int_t)st.st_size,
                          "lastModified", iso);
    free(path);
    return r;
}
