#include "push.h"

#include "actiongate.h"
#include "cluster.h"
#include "conn.h"

json_t *ag__push_payload(const json_t *obj)
{
    json_t *o = json_copy((json_t *)obj); /* jansson's copy does not change its argument */
    if (o != NULL && json_object_get(o, "context") == NULL)
        json_object_set_new(o, "context", json_string("api"));
    return o;
}

static int push_local(ag_server_t *s, const char *conn_id, const json_t *obj)
{
    ag_conn_t *c = ag_conn_find(s, conn_id);
    if (c == NULL)
        return AG_ENOENT;
    if (!json_is_object(obj))
        return AG_EINVAL;
    json_t *o = ag__push_payload(obj);
    int ret = o != NULL ? ag_conn_send_json(c, o) : AG_ENOMEM;
    json_decref(o);
    return ret;
}

int ag_push_conn(ag_server_t *s, const char *conn_id, json_t *obj)
{
    if (!json_is_object(obj))
        return AG_EINVAL;
    if (json_dumpb(obj, NULL, 0, AG_JSON_FLAGS) > ag_conn_max_frame(s))
        return AG_ETOOBIG; /* before it travels to another node */
    int ret = push_local(s, conn_id, obj);
    /* not here: the node that holds it, if there is a cluster (AG_ENOENT without one) */
    return ret == AG_ENOENT ? ag_cluster_forward_push(s, conn_id, obj) : ret;
}

void ag__push_init(ag_server_t *s)
{
    ag_cluster_set_push_receiver(s, push_local);
}
