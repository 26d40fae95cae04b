#ifndef AG_CONFIG_INTERNAL_H
#define AG_CONFIG_INTERNAL_H
/* Private to the config module (config.c, config_check.c). */
#include <stddef.h>
#include "config.h"

/* The checks a loaded configuration must pass as a whole (config_check.c): 0, or -1 with "name:1: problem" in errbuf. */
int ag__config_check(const ag_config_t *c, const char *name, char *errbuf, size_t errlen);

#endif
