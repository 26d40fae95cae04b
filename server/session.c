/* Placeholder session layer: welcome only. Replaced by the session-layer work (issue 2). */
#include "session.h"
#include "server.h"

void ag_session_on_open(ag_conn_t *c)
{
    json_t *w = json_pack("{s:s,s:s}", "welcome", c->server->config->general.welcomeMessage, "context", "api");
    ag_conn_send_json(c, w);
    json_decref(w);
}

void ag_session_on_frame(ag_conn_t *c, const char *data, size_t len, int binary)
{
    ag_frame_t *f = ag_frame_create(data, len, binary);
    ag_conn_send(c, f);
    ag_frame_release(f);
}

void ag_session_on_close(ag_conn_t *c)
{
}

int ag_session_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    return 0;
}

void ag_session_stop(ag_server_t *s)
{
}

void ag_session_dispose(ag_server_t *s)
{
}
