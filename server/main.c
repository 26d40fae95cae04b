/*
 * actiongate: the binary. A thin main over the server: options, configuration, run.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server.h"
#include "token.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: actiongate [--config FILE] [--port N] [--host ADDR] [--public DIR] [--log-level L]\n"
                "                  [--check-config] [--version] [--help]\n"
                "\n"
                "  --config FILE    YAML configuration (config/actiongate.yaml documents every key);\n"
                "                   without it the built-in defaults run: port 8080, in-memory store, demo pages\n"
                "  --port N         listen port (also env PORT); 0 picks a free port\n"
                "  --host ADDR      bind address (servers.web.bindIP)\n"
                "  --public DIR     public directory (servers.web.publicDir)\n"
                "  --log-level L    debug, info, warn, error or none (general.logLevel)\n"
                "  --check-config   validate the configuration and exit (status 2 when invalid)\n"
                "  --version        print the version\n"
                "\n"
                "Environment: PORT (listen port), REDIS_URL (redis://[:password@]host:port[/db]: cluster mode).\n");
}

static int replace(char **field, const char *value)
{
    char *s = strdup(value);
    if (s == NULL)
        return -1;
    free(*field);
    *field = s;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"host", required_argument, NULL, 'H'},
                                         {"public", required_argument, NULL, 'P'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *port = NULL, *host = NULL, *public_dir = NULL, *log_level = NULL;
    int check_only = 0, ch;
    while ((ch = getopt_long(argc, argv, "c:p:H:P:l:Cvh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'P':
            public_dir = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'v':
            printf("actiongate %s\n", AG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    char err[1024];
    ag_config_t *cfg = config_path != NULL ? ag_config_load(config_path, err, sizeof(err)) : ag_config_create_default();
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", config_path != NULL ? err : "out of memory");
        return 2;
    }
    /* the token keys are files the configuration names: a missing or unusable one is a configuration error too */
    if (ag_token_configured(cfg)) {
        ag_token_verifier_t *v = ag_token_verifier_create(cfg, err, sizeof(err));
        if (v == NULL) {
            fprintf(stderr, "%s:1: %s\n", config_path != NULL ? config_path : "(built-in defaults)", err);
            ag_config_destroy(cfg);
            return 2;
        }
        ag_token_verifier_destroy(v);
    }
    if (check_only) {
        printf("%s: ok\n", config_path != NULL ? config_path : "(built-in defaults)");
        ag_config_destroy(cfg);
        return 0;
    }
    /* defaults < file < environment < command line */
    const char *env;
    if (port == NULL && (env = getenv("PORT")) != NULL && env[0] != '\0')
        port = env;
    if ((env = getenv("REDIS_URL")) != NULL && env[0] != '\0')
        replace(&cfg->redis.url, env);
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end != '\0' || p < 0 || p > 65535) {
            fprintf(stderr, "--port: not a port number: %s\n", port);
            ag_config_destroy(cfg);
            return 2;
        }
        cfg->servers.web.port = (int)p;
    }
    if (host != NULL)
        replace(&cfg->servers.web.bindIP, host);
    if (public_dir != NULL)
        replace(&cfg->servers.web.publicDir, public_dir);
    if (log_level != NULL)
        replace(&cfg->general.logLevel, log_level);
    int lvl = ag_log_level_parse(cfg->general.logLevel);
    if (lvl < 0) {
        fprintf(stderr, "--log-level: one of debug, info, warn, error, none\n");
        ag_config_destroy(cfg);
        return 2;
    }
    ag_log_threshold = (ag_log_level_t)lvl;

    ag_server_t *s = ag_server_create(cfg, err, sizeof(err));
    if (s == NULL || ag_server_listen(s, err, sizeof(err)) != 0) {
        fprintf(stderr, "actiongate: %s\n", err);
        ag_server_destroy(s);
        return 1;
    }
    int ret = ag_server_run(s);
    ag_server_destroy(s);
    return ret;
}
