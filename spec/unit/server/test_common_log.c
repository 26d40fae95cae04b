/* server/common.c: ag_log writes one line per call, whatever the text it is given. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"

/* The message part of the one line ag_log writes for text (after "<conn id> "). */
static char *logged(const char *conn_id, const char *text)
{
    static char line[8192];
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    ag_log(AG_LOG_ERROR, "test", conn_id, "%s", text);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(line, 1, sizeof(line) - 1, tmp);
    fclose(tmp);
    line[n] = '\0';
    char *nl = strchr(line, '\n');
    if (nl == NULL || nl[1] != '\0')
        fail_msg("not exactly one line: \"%s\"", line);
    *nl = '\0';
    char *tag = strstr(line, "[test] ");
    assert_non_null(tag);
    return tag + strlen("[test] ");
}

static void test_controls_are_escaped(void **state)
{
    assert_string_equal(logged("c1", "plain text, ümlaut, 日本, 😀"), "c1 plain text, ümlaut, 日本, 😀");
    assert_string_equal(logged(NULL, "a\nb\rc\td"), "- a\\nb\\rc\\td");
    assert_string_equal(logged(NULL, "back\\slash"), "- back\\\\slash");
    assert_string_equal(logged(NULL, "\x1b[2J\x7f\x01"), "- \\x1b[2J\\x7f\\x01");
    /* not UTF-8: a lone continuation byte, a cut sequence, an overlong form, a surrogate */
    assert_string_equal(logged(NULL, "\x80 \xc3 \xc0\xaf \xed\xa0\x80"), "- \\x80 \\xc3 \\xc0\\xaf \\xed\\xa0\\x80");
    /* C1 controls (CSI), line separators and bidirectional overrides */
    assert_string_equal(logged(NULL, "\xc2\x9b \xe2\x80\xa8 \xe2\x80\xae"), "- \\xc2\\x9b \\xe2\\x80\\xa8 \\xe2\\x80\\xae");
    /* the connection id is client-influenced in places too */
    assert_string_equal(logged("id\n2030-01-01 error", "x"), "id\\n2030-01-01 error x");
}

static void test_long_text_stays_one_line(void **state)
{
    char big[3000];
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *m = logged(NULL, big);
    assert_true(strlen(m) > 1000);
    assert_null(strchr(m, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_controls_are_escaped),
                                       cmocka_unit_test(test_long_text_stays_one_line)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
