/* A module calling one of the binary's internal functions, which it does not export (only include/actiongate.h is):
 * RTLD_NOW refuses the module at boot, not at its first call. */
#include <actiongate.h>

int ag_conn_send_json(ag_conn_t *c, const json_t *obj);

int actiongate_module_init(ag_server_t *server, const char *path, char *errbuf, size_t errlen)
{
    (void)path;
    (void)errbuf;
    (void)errlen;
    return ag_conn_send_json(ag_conn_find(server, "nobody"), NULL);
}
