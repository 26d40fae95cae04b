/* The file helpers (server/files.c): MIME types, paths kept inside the public directory, the file verb's payload. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "files.h"
#include "frame.h"

static void assert_dump(json_t *j, const char *want)
{
    char *s = json_dumps(j, AG_JSON_FLAGS);
    assert_string_equal(s, want);
    free(s);
}

static void test_mime_and_paths(void **state)
{
    assert_string_equal(ag__mime_type("a/b.html"), "text/html");
    assert_string_equal(ag__mime_type("x.CSS"), "text/css");
    assert_string_equal(ag__mime_type("x.js"), "application/javascript");
    assert_string_equal(ag__mime_type("dir.d/noext"), "application/octet-stream");
    char tmpl[] = "/tmp/ag-files-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char *real = realpath(dir, NULL);
    char pub[512], path[600], outside[600], link[600];
    snprintf(pub, sizeof(pub), "%s/public", real);
    assert_int_equal(mkdir(pub, 0700), 0);
    snprintf(path, sizeof(path), "%s/ok.txt", pub);
    FILE *fp = fopen(path, "w");
    fputs("hello", fp);
    fclose(fp);
    snprintf(outside, sizeof(outside), "%s/secret.txt", real);
    fp = fopen(outside, "w");
    fputs("secret", fp);
    fclose(fp);
    snprintf(link, sizeof(link), "%s/link.txt", pub);
    assert_int_equal(symlink(outside, link), 0);

    char *p = ag__public_path(pub, "ok.txt");
    assert_non_null(p);
    assert_string_equal(p, path);
    free(p);
    assert_null(ag__public_path(pub, "../secret.txt"));
    assert_null(ag__public_path(pub, "link.txt")); /* a symlink out of the directory */
    assert_null(ag__public_path(pub, path));       /* absolute */
    assert_null(ag__public_path(pub, ""));
    assert_null(ag__public_path(pub, NULL));
    assert_null(ag__public_path(pub, "."));

    json_t *r = ag__file_payload(pub, "ok.txt", 1024);
    assert_string_equal(json_string_value(json_object_get(r, "content")), "hello");
    assert_string_equal(json_string_value(json_object_get(r, "mime")), "text/plain");
    assert_int_equal(json_integer_value(json_object_get(r, "length")), 5);
    assert_int_equal(json_string_length(json_object_get(r, "lastModified")), 24);
    json_decref(r);
    r = ag__file_payload(pub, "ok.txt", 2); /* over the size limit */
    assert_dump(r, "{\"error\":\"that file is not found\",\"content\":null,\"mime\":\"text/html\",\"length\":22}");
    json_decref(r);
    r = ag__file_payload(pub, "link.txt", 1024);
    assert_string_equal(json_string_value(json_object_get(r, "error")), "that file is not found");
    json_decref(r);
    unlink(link);
    unlink(path);
    unlink(outside);
    rmdir(pub);
    rmdir(real);
    free(real);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mime_and_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
