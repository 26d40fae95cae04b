/* A module whose init fails: the node refuses to boot with its reason. */
#include <stdio.h>
#include <actiongate.h>

int actiongate_module_init(ag_server_t *server, const char *path, char *errbuf, size_t errlen)
{
    (void)server;
    (void)path;
    snprintf(errbuf, errlen, "no database configured");
    return 1;
}
