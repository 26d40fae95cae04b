#include "node.h"

#include <string.h>
#include <sys/socket.h>

static int port_of(h2o_socket_t *listener)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (listener == NULL || getsockname(h2o_socket_get_fd(listener), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return h2o_socket_getport((struct sockaddr *)&ss);
}

int ag_server_port(ag_server_t *s)
{
    return port_of(s->listener);
}

int ag_server_forward_port(ag_server_t *s)
{
    return port_of(s->private_listener != NULL ? s->private_listener : s->listener);
}

int ag_server_timeout_dispose(ag_server_t *s, h2o_timeout_t *t)
{
    if (!h2o_linklist_is_empty(&t->_entries))
        return -1;
    h2o_timeout_dispose(s->loop, t);
    return 0;
}
