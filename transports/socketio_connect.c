/*
 * The socket.io layer's CONNECT (socketio_internal.h): the token it carries or the handshake had, the connect hook, the
 * logical connection made, and the reply, which waits for a recovery the CONNECT asks for (socketio_recovery.c).
 */
#include "socketio_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "token.h"

void ag__sio_connect_answer(ag_sio_t *sio, const ag_conn_t *c, const char *pid)
{
    /* protocol 4's CONNECT has no payload; pid only when the connection can be recovered (socket.io's rule) */
    char text[64 + AG__SIO_PID_MAX];
    int n = pid != NULL && pid[0] != '\0' ? snprintf(text, sizeof(text), "{\"sid\":\"%s\",\"pid\":\"%s\"}", c->id, pid)
                                          : snprintf(text, sizeof(text), "{\"sid\":\"%s\"}", c->id);
    /* in front of the welcome (or the replay) the connection already queued */
    ag__sio_out_push(
        sio, ag_sio_encode(AG_SIO_CONNECT, NULL, -1, NULL, sio->legacy ? NULL : text, sio->legacy ? 0 : (size_t)n, NULL), 1);
}

/* claims: the verified token, or NULL (borrowed). */
static void attach_conn(ag_sio_t *sio, const char *fp, json_t *hook_data, json_t *claims)
{
    ag_conn_info_t info = {fp,  sio->remote_ip, sio->remote_port, sio->transport_name, hook_data != NULL, hook_data, NULL, claims,
                           NULL};
    ag__sio_state_t *st = calloc(1, sizeof(*st));
    sio->creating = 1;
    sio->conn = st != NULL ? ag_conn_create(sio->server, &ag__sio_transport, sio, &info) : NULL;
    sio->creating = 0;
    if (sio->conn == NULL) {
        free(st);
        ag__sio_want_clear(sio);
        ag__sio_out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, NULL, -1, NULL, "{\"message\":\"server error\"}", 26, NULL), 0);
    } else {
        sio->conn->carrier_state = st;
        sio->conn->carrier_state_free = ag__sio_state_free;
        sio->conn->carrier_state_save = ag__sio_state_save;
        sio->conn->carrier_state_brief = ag__sio_state_brief;
        if (h2o_timeout_is_linked(&sio->connect_timer))
            h2o_timeout_unlink(&sio->connect_timer);
        if (sio->want_pid != NULL && sio->want_offset != NULL && !sio->legacy &&
            sio->server->config->servers.socketio.connectionStateRecovery) {
            ag__sio_recover(sio); /* answers the CONNECT when it knows */
            return;
        }
        ag__sio_want_clear(sio);
        ag__sio_make_recoverable(sio, sio->conn);
        ag__sio_connect_answer(sio, sio->conn, st->pid);
    }
    if (h2o_timeout_is_linked(&sio->connect_timer))
        h2o_timeout_unlink(&sio->connect_timer);
    ag__sio_lower_kick(sio);
}

/* socket.io's refusal from a middleware: CONNECT_ERROR with the text; the session stays until connectTimeout. */
static void connect_error(ag_sio_t *sio, const char *refusal)
{
    json_t *body = json_pack("{s:s}", "message", refusal);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text != NULL)
        ag__sio_out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, NULL, -1, NULL, text, strlen(text), NULL), 0);
    free(text);
    json_decref(body);
    ag__sio_lower_kick(sio);
}

static void on_connect_answer(void *data, const char *refusal, json_t *reply)
{
    ag_sio_t *sio = data;
    sio->hook_call = NULL;
    char *fp = sio->hook_fp;
    sio->hook_fp = NULL;
    json_t *claims = sio->hook_claims;
    sio->hook_claims = NULL;
    if (refusal != NULL) {
        connect_error(sio, refusal);
    } else {
        json_t *d = json_object_get(reply, "data");
        json_t *hook_data = json_is_object(d) ? json_incref(d) : json_object();
        attach_conn(sio, fp, hook_data, claims);
        json_decref(hook_data);
    }
    json_decref(claims);
    free(fp);
}

/* The CONNECT's token: auth.token, else the engine.io handshake's (query or Authorization header). Checked first;
 * AG_TOKEN_OK with *claims a new reference or NULL. */
static ag_token_err_t connect_token(ag_sio_t *sio, const ag_sio_packet_t *p, json_t **claims)
{
    *claims = NULL;
    json_t *tok = json_object_get(p->data, "token");
    if (tok != NULL) {
        /* a token that is not a string is presented and invalid, not absent */
        const char *text = json_is_string(tok) ? json_string_value(tok) : "";
        return ag_token_check_text(sio->server, text, json_is_string(tok) ? json_string_length(tok) : 0, sio->remote_ip, claims);
    }
    if (sio->hs_claims != NULL) {
        /* the engine.io session may CONNECT again long after its handshake: its token may have expired meanwhile */
        json_t *exp = json_object_get(sio->hs_claims, "exp");
        if (json_is_number(exp) &&
            (double)(ag_now_ms() / 1000) >= json_number_value(exp) + (double)sio->server->config->tokens.leeway)
            return AG_TOKEN_EXPIRED;
        *claims = json_incref(sio->hs_claims);
        return AG_TOKEN_OK;
    }
    return ag_token_check_text(sio->server, NULL, 0, sio->remote_ip, claims);
}

void ag__sio_on_connect(ag_sio_t *sio, const ag_sio_packet_t *p)
{
    const char *fp = sio->fingerprint;
    const char *cookie_key = sio->server->config->servers.web.cookieKey;
    /* A page that cannot put the fingerprint in the URL may pass it in the CONNECT auth payload. */
    if (fp == NULL && json_is_string(json_object_get(p->data, cookie_key)))
        fp = json_string_value(json_object_get(p->data, cookie_key));
    /* socket.io-client's recovery: {pid, offset} merged into the auth payload (bounded; checked when it is used) */
    const char *pid = json_string_value(json_object_get(p->data, "pid"));
    const char *offset = json_string_value(json_object_get(p->data, "offset"));
    ag__sio_want_clear(sio);
    if (pid != NULL && offset != NULL && strlen(pid) <= AG__SIO_PID_MAX && strlen(offset) <= AG__SIO_OFFSET_MAX) {
        sio->want_pid = strdup(pid);
        sio->want_offset = strdup(offset);
    }
    json_t *claims;
    ag_token_err_t terr = connect_token(sio, p, &claims);
    if (terr != AG_TOKEN_OK) {
        connect_error(sio, ag_token_client_error(terr));
        return;
    }
    if (!ag_backend_has(sio->server, AG_HOOK_CONNECT)) {
        attach_conn(sio, fp, NULL, claims);
        json_decref(claims);
        return;
    }
    json_t *params = sio->handshake != NULL ? json_deep_copy(sio->handshake) : json_object();
    if (params != NULL) {
        json_object_set_new(params, "remoteIP", json_string(sio->remote_ip));
        json_object_set_new(params, "transport", json_string(sio->transport_name));
        if (fp != NULL)
            json_object_set_new(params, "fingerprint", json_string(fp));
        json_object_set(params, "auth", json_is_object(p->data) ? p->data : json_null());
        json_t *sub = json_object_get(claims, "sub");
        if (json_is_string(sub))
            json_object_set(params, "user", sub);
        if (claims != NULL)
            json_object_set(params, "claims", claims);
    }
    sio->hook_fp = fp != NULL ? strdup(fp) : NULL;
    sio->hook_claims = claims;
    ag_backend_ask(sio->server, AG_HOOK_CONNECT, params, fp, sio->remote_ip, on_connect_answer, sio, &sio->hook_call);
}
