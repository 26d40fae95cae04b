#include "modules.h"

#include "clientjs.h"
#include "cluster.h"
#include "eio.h"
#include "primus.h"
#include "session.h"
#include "socketio.h"
#include "upstream.h"

int ag_modules_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    int ret;
    if ((ret = ag_session_init(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_upstream_init(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_cluster_init(s, errbuf, errlen)) != 0)
        return ret;
    /* before the transports: it takes engine.io requests whose session lives on another node */
    ag_cluster_register(s);
    if (s->config->servers.websocket.enabled) {
        ag_primus_register(s);
        ag_eio_register(s);
    }
    if ((ret = ag_socketio_register(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_clientjs_init(s, errbuf, errlen)) != 0)
        return ret;
    return 0;
}

void ag_modules_stop(ag_server_t *s)
{
    ag_session_stop(s);
    ag_eio_stop(s);
    ag_cluster_stop(s);
}

void ag_modules_dispose(ag_server_t *s)
{
    ag_eio_dispose(s);
    ag_clientjs_dispose(s);
    ag_socketio_dispose(s);
    ag_cluster_dispose(s);
    ag_session_dispose(s);
    /* after the session layer, whose pending requests cancel their own upstream calls */
    ag_upstream_dispose(s);
}
