/*
 * Loading C modules (server/modules.h). RTLD_NOW: a module whose symbols do not resolve against the binary fails at
 * boot, not at its first call. RTLD_LOCAL: two modules may define the same helper names without one binding the
 * other's.
 */
#include "modules.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

struct st_ag_modules_t {
    void *handles[AG_CONFIG_MODULES_MAX];
    size_t n;
};

/* dlerror() may name the file again and end with a newline; one line is what the boot error promises. */
static void one_line(char *buf)
{
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int ag_modules_load(ag_server_t *s, char *errbuf, size_t errlen)
{
    char *const *paths = s->config->modules;
    if (paths == NULL || paths[0] == NULL)
        return 0;
    if (s->modules == NULL && (s->modules = calloc(1, sizeof(*s->modules))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    for (size_t i = 0; paths[i] != NULL && s->modules->n < AG_CONFIG_MODULES_MAX; i++) {
        const char *path = paths[i];
        dlerror();
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            const char *why = dlerror();
            snprintf(errbuf, errlen, "module %s: cannot load: %s", path, why != NULL ? why : "unknown error");
            one_line(errbuf);
            return AG_ECONFIG;
        }
        s->modules->handles[s->modules->n++] = h;
        dlerror();
        void *sym = dlsym(h, AG_MODULE_INIT_SYMBOL);
        if (sym == NULL) {
            snprintf(errbuf, errlen, "module %s: no %s symbol", path, AG_MODULE_INIT_SYMBOL);
            return AG_ECONFIG;
        }
        ag_module_init_fn init;
        /* POSIX guarantees a function's address survives the trip through void * that dlsym needs */
        memcpy(&init, &sym, sizeof(init));
        char why[512] = "";
        int ret = init(s, path, why, sizeof(why));
        if (ret != 0) {
            why[sizeof(why) - 1] = '\0';
            snprintf(errbuf, errlen, "module %s: init failed: %s", path, why[0] != '\0' ? why : "(no reason given)");
            one_line(errbuf);
            return AG_ECONFIG;
        }
        ag_log(AG_LOG_INFO, "modules", NULL, "loaded %s", path);
    }
    return 0;
}

struct st_ag_modules_t *ag_modules_detach(ag_server_t *s)
{
    struct st_ag_modules_t *m = s->modules;
    s->modules = NULL;
    return m;
}

void ag_modules_unload(struct st_ag_modules_t *m)
{
    if (m == NULL)
        return;
    /* the reverse of the load order: a later module may have been given pointers into an earlier one */
    while (m->n > 0)
        dlclose(m->handles[--m->n]);
    free(m);
}
