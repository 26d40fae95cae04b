/* The config loader on arbitrary bytes: every input loads or gives one "FILE:LINE: ..." line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    ag_config_t *c = ag_config_load_buffer((const char *)data, size, "fuzz.yaml", err, sizeof(err));
    if (c != NULL) {
        ag_config_destroy(c);
    } else if (strncmp(err, "fuzz.yaml:", 10) != 0 || strchr(err, '\n') != NULL) {
        abort(); /* an error must be one line naming the file */
    }
    return 0;
}
