#include "modules.h"

#include "primus.h"
#include "session.h"
#include "socketio.h"

int ag_modules_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    int ret;
    if ((ret = ag_session_init(s, errbuf, errlen)) != 0)
        return ret;
    if (s->config->servers.websocket.enabled)
        ag_primus_register(s);
    if ((ret = ag_socketio_register(s, errbuf, errlen)) != 0)
        return ret;
    return 0;
}

void ag_modules_stop(ag_server_t *s)
{
    ag_session_stop(s);
}

void ag_modules_dispose(ag_server_t *s)
{
    ag_socketio_dispose(s);
    ag_session_dispose(s);
}
