/*
 * The hook chain (ag_set_hooks, ag_hooks_add): the application's set first, then the modules' in the order they were
 * added, run as include/actiongate.h says.
 */
#include "rooms_internal.h"

#include <stdlib.h>
#include <string.h>

static struct st_ag_hook_chain_t *chain_of(ag_server_t *s)
{
    if (s->hooks == NULL && (s->hooks = calloc(1, sizeof(*s->hooks))) != NULL)
        s->hooks->n = 1;
    return s->hooks;
}

void ag_set_hooks(ag_server_t *s, const ag_hooks_t *hooks)
{
    struct st_ag_hook_chain_t *ch = chain_of(s);
    if (ch == NULL)
        return;
    if (hooks != NULL)
        ch->sets[0] = *hooks;
    else
        memset(&ch->sets[0], 0, sizeof(ch->sets[0]));
}

int ag_hooks_add(ag_server_t *s, const ag_hooks_t *hooks)
{
    struct st_ag_hook_chain_t *ch = chain_of(s);
    if (hooks == NULL)
        return AG_EINVAL;
    if (ch == NULL)
        return AG_ENOMEM;
    if (ch->n > AG__HOOKS_MAX)
        return AG_EBUSY;
    ch->sets[ch->n++] = *hooks;
    return AG_OK;
}

int ag__hooks_join(ag_conn_t *c, const char *room, const char **reject)
{
    AG__EACH_HOOK(c->server, h)
    {
        if (h->on_join != NULL && h->on_join(c, room, reject, h->data) != 0)
            return 1;
    }
    return 0;
}

int ag__hooks_leave(ag_conn_t *c, const char *room, const char **reject)
{
    AG__EACH_HOOK(c->server, h)
    {
        if (h->on_leave != NULL && h->on_leave(c, room, reject, h->data) != 0)
            return 1;
    }
    return 0;
}

json_t *ag__hooks_say(ag_conn_t *c, const char *room, json_t *payload)
{
    AG__EACH_HOOK(c->server, h)
    {
        if (payload != NULL && h->on_say != NULL)
            payload = h->on_say(c, room, payload, h->data);
    }
    return payload;
}

int ag__hooks_have_recipient(ag_server_t *s)
{
    AG__EACH_HOOK(s, h)
    {
        if (h->on_say_recipient != NULL)
            return 1;
    }
    return 0;
}

json_t *ag__hooks_say_recipient(ag_conn_t *recipient, const char *room, json_t *payload)
{
    json_t *cur = json_incref(payload);
    AG__EACH_HOOK(recipient->server, h)
    {
        if (cur != NULL && h->on_say_recipient != NULL) {
            json_t *out = h->on_say_recipient(recipient, room, cur, h->data);
            json_decref(cur);
            cur = out;
        }
    }
    return cur;
}

void ag__hooks_connect(ag_conn_t *c)
{
    AG__EACH_HOOK(c->server, h)
    {
        if (h->on_connect != NULL)
            h->on_connect(c, h->data);
    }
}

void ag__hooks_disconnect(ag_conn_t *c, const ag_disconnect_t *why)
{
    AG__EACH_HOOK(c->server, h)
    {
        if (h->on_disconnect != NULL)
            h->on_disconnect(c, why, h->data);
    }
}
