#include "push.h"

#include <stdlib.h>
#include <string.h>
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

/* Every open connection of this node whose user (or fingerprint) is who gets the frame, up to serverApi.maxFanout of
 * them. The matches are taken first, then sent to: a send may close a slow consumer, which must not happen while the
 * connection table is walked. */
static json_t *push_many(ag_server_t *s, int by_user, const char *who, const json_t *data)
{
    size_t cap = (size_t)s->config->serverApi.maxFanout, n = 0, skipped = 0, count = 0;
    if (cap > s->num_conns)
        cap = s->num_conns;
    ag_conn_t **to = malloc(sizeof(*to) * (cap + 1));
    json_t *payload = ag__push_payload(data);
    ag_frame_t *f = payload != NULL ? ag_frame_from_json(payload) : NULL;
    json_decref(payload);
    if (to == NULL || f == NULL) {
        free(to);
        if (f != NULL)
            ag_frame_release(f);
        return NULL;
    }
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&s->conns, &it, &k, &v);) {
        ag_conn_t *c = v;
        const char *its = by_user ? c->user : c->fingerprint;
        if (ag_conn_is_closed(c) || its == NULL || strcmp(its, who) != 0)
            continue;
        if (n < cap)
            to[n++] = ag_conn_addref(c);
        else
            skipped++;
    }
    for (size_t i = 0; i < n; i++) {
        count += ag_conn_send(to[i], f) == 0;
        ag_conn_release(to[i]);
    }
    free(to);
    ag_frame_release(f);
    return json_pack("{s:I,s:I}", "count", (json_int_t)count, "skipped", (json_int_t)skipped);
}

json_t *ag__push_call(ag_server_t *s, const json_t *call)
{
    const char *op = json_string_value(json_object_get(call, "op"));
    const char *id = json_string_value(json_object_get(call, "connectionId"));
    json_t *data = json_object_get(call, "data");
    if (op == NULL)
        return json_object();
    if (strcmp(op, AG_PUSH_OP_COUNT) == 0)
        return json_pack("{s:I}", "connections", (json_int_t)s->num_conns);
    if (strcmp(op, AG_PUSH_OP_PUSH) == 0 && id != NULL && json_is_object(data)) {
        int ret = push_local(s, id, data);
        if (ret == 0 || ret == AG_ENOENT)
            return json_pack("{s:b}", "found", ret == 0);
        return json_pack("{s:b,s:s}", "found", 1, "error", ag_strerror(ret));
    }
    if (strcmp(op, AG_PUSH_OP_DISCONNECT) == 0 && id != NULL) {
        ag_conn_t *c = ag_conn_find(s, id);
        if (c != NULL)
            ag_conn_close(c, json_is_true(json_object_get(call, "reconnect")) ? &AG_DISCONNECT_KICKED : &AG_DISCONNECT_SERVER);
        return json_pack("{s:b}", "found", c != NULL);
    }
    int by_user = strcmp(op, AG_PUSH_OP_USER) == 0;
    const char *who = json_string_value(json_object_get(call, by_user ? "user" : "fingerprint"));
    if ((by_user || strcmp(op, AG_PUSH_OP_FINGERPRINT) == 0) && who != NULL && json_is_object(data))
        return push_many(s, by_user, who, data);
    return json_object();
}

void ag__push_init(ag_server_t *s)
{
    ag_cluster_set_push_receiver(s, push_local);
    ag_cluster_set_call_receiver(s, ag__push_call);
}
