/*
 * Calls to every node (cluster_internal.h): a server API call runs here first, then, unless that settled it, goes to
 * every other live node in the registry over the cluster channel; the answers come back on this node's reply channel
 * until enough said so, all answered, or the deadline passed.
 */
#include "cluster_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* calls waiting for other nodes at once (each holds an API request); more are refused until some end */
#define MAX_CALLS 1024

void ag_cluster_set_call_receiver(ag_server_t *s, ag_cluster_call_receiver_fn fn)
{
    if (s->cluster != NULL)
        s->cluster->call_receiver = fn;
}

static void call_release(ag_cluster_call_t *k)
{
    if (--k->refs != 0)
        return;
    json_decref(k->call);
    json_decref(k->nodes);
    json_decref(k->answers);
    free(k);
}

/* No longer waiting: off the timer, the id map and the open list. */
void ag__cluster_call_end(ag_cluster_call_t *k)
{
    k->finished = 1;
    if (h2o_timeout_is_linked(&k->timer))
        h2o_timeout_unlink(&k->timer);
    if (h2o_linklist_is_linked(&k->link)) {
        h2o_linklist_unlink(&k->link);
        k->c->num_open_calls--;
    }
    if (k->published)
        ag_map_del(&k->c->calls, k->id);
    k->published = 0;
}

static void call_finish(ag_cluster_call_t *k, const char *err)
{
    if (k->finished)
        return;
    ag__cluster_call_end(k);
    k->done(k->data, k->nodes, k->answers, err);
    call_release(k);
}

void ag_cluster_call_cancel(ag_cluster_call_t *k)
{
    if (k == NULL)
        return;
    if (!k->finished) /* else the cluster went first and ended it: the caller's reference is still here */
        ag__cluster_call_end(k);
    call_release(k);
}

static void on_call_timeout(h2o_timeout_entry_t *entry)
{
    ag_cluster_call_t *k = H2O_STRUCT_FROM_MEMBER(ag_cluster_call_t, timer, entry);
    k->c->stats.call_timeouts++;
    call_finish(k, NULL);
}

static int add_node(json_t *nodes, const char *id, const char *address)
{
    return json_array_append_new(nodes, json_pack("{s:s,s:s}", "id", id, "address", address));
}

static void call_publish(ag_cluster_call_t *k)
{
    ag_cluster_t *c = k->c;
    json_t *msg = json_pack("{s:s,s:s,s:s,s:O}", "type", "call", "id", k->id, "from", c->server->node_id, "call", k->call);
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (text == NULL || ag_map_set(&c->calls, k->id, k) != 0) {
        free(text);
        call_finish(k, "out of memory");
        return;
    }
    k->published = 1;
    h2o_timeout_link(c->server->loop, &c->call_timeout, &k->timer);
    c->stats.calls_out++;
    /* a publish that fails (Redis away) leaves the call to its deadline, as a node that does not answer would */
    c->store->ops->publish(c->store, "_cluster", text, strlen(text), NULL, NULL);
    free(text);
}

/* The registry's live nodes: the call goes to every one but this node. */
static void on_node_list(void *data, const char *err, json_t *result)
{
    ag_cluster_call_t *k = data;
    if (!k->finished && err != NULL) {
        call_finish(k, err);
    } else if (!k->finished) {
        size_t i;
        json_t *e;
        json_array_foreach(result, i, e)
        {
            const char *id = json_string_value(json_object_get(e, "id"));
            if (id == NULL || strcmp(id, k->c->server->node_id) == 0 || json_array_append(k->nodes, e) != 0)
                continue;
            k->expected++;
        }
        if (k->expected == 0)
            call_finish(k, NULL);
        else
            call_publish(k);
    }
    call_release(k);
}

ag_cluster_call_t *ag_cluster_call(ag_server_t *s, const json_t *call, ag_cluster_call_enough_fn enough,
                                   ag_cluster_call_done_fn done, void *data)
{
    ag_cluster_t *c = s->cluster;
    ag_cluster_call_t *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->nodes = json_array()) == NULL || (k->answers = json_object()) == NULL ||
        add_node(k->nodes, s->node_id, c != NULL ? c->address : "") != 0) {
        if (k != NULL) {
            json_decref(k->nodes);
            json_decref(k->answers);
        }
        free(k);
        done(data, NULL, NULL, "out of memory");
        return NULL;
    }
    k->c = c;
    k->call = json_incref((json_t *)call); /* jansson counts references on const values too */
    k->enough = enough;
    k->done = done;
    k->data = data;
    k->timer.cb = on_call_timeout;
    k->refs = 2; /* the caller's, and this function's until it returns */
    json_t *here = c != NULL && c->call_receiver != NULL ? c->call_receiver(s, call) : NULL;
    if (here != NULL)
        json_object_set_new(k->answers, s->node_id, here);
    if (c == NULL || !c->clustered || (here != NULL && enough != NULL && enough(data, here))) {
        call_finish(k, NULL);
    } else if (c->num_open_calls >= MAX_CALLS) {
        call_finish(k, "too many calls in flight");
    } else {
        snprintf(k->id, sizeof(k->id), "%llu", (unsigned long long)++c->next_call);
        h2o_linklist_insert(&c->open_calls, &k->link);
        c->num_open_calls++;
        k->refs++; /* the registry read's */
        c->store->ops->node_list(c->store, on_node_list, k);
    }
    ag_cluster_call_t *ret = k->finished ? NULL : k;
    call_release(k);
    return ret;
}

/* Another node's call: run here, answered on its reply channel. */
void ag__cluster_call_in(ag_cluster_t *c, const json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    const char *from = json_string_value(json_object_get(msg, "from"));
    json_t *call = json_object_get(msg, "call");
    if (id == NULL || from == NULL || !json_is_object(call) || c->call_receiver == NULL ||
        strlen(from) >= AG__CLUSTER_NODE_ID_MAX || strcmp(from, c->server->node_id) == 0)
        return;
    c->stats.calls_in++;
    json_t *answer = c->call_receiver(c->server, call);
    json_t *reply = json_pack("{s:s,s:s,s:s,s:o}", "type", "reply", "id", id, "node", c->server->node_id, "answer",
                              answer != NULL ? answer : json_object());
    char *text = reply != NULL ? json_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);
    char channel[sizeof(c->reply_channel)];
    snprintf(channel, sizeof(channel), "_reply:%s", from);
    if (text != NULL)
        c->store->ops->publish(c->store, channel, text, strlen(text), NULL, NULL);
    free(text);
}

/* A node's answer to one of this node's calls. */
void ag__cluster_reply_in(ag_cluster_t *c, const json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    const char *node = json_string_value(json_object_get(msg, "node"));
    json_t *answer = json_object_get(msg, "answer");
    ag_cluster_call_t *k = id != NULL ? ag_map_get(&c->calls, id) : NULL;
    if (k == NULL || k->finished || node == NULL || !json_is_object(answer) || json_object_get(k->answers, node) != NULL)
        return;
    /* a node that joined after the list was read counts in the answers, not towards the expected ones */
    size_t i;
    json_t *e;
    json_array_foreach(k->nodes, i, e)
    {
        if (i > 0 && json_equal(json_object_get(e, "id"), json_object_get(msg, "node"))) {
            k->answered++;
            break;
        }
    }
    json_object_set(k->answers, node, answer);
    if ((k->enough != NULL && k->enough(k->data, answer)) || k->answered >= k->expected)
        call_finish(k, NULL);
}
