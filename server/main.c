/*
 * actiongate: the binary. A thin main over the public API (include/actiongate.h), as an embedding application would
 * write it: options, configuration, run.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actiongate.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: actiongate [--config FILE] [--port N] [--host ADDR] [--public DIR] [--log-level L]\n"
                "                  [--workers N] [--check-config] [--version] [--help]\n"
                "\n"
                "  --config FILE    YAML configuration (config/actiongate.yaml documents every key);\n"
                "                   without it the built-in defaults run: port 8080, in-memory store, demo pages\n"
                "  --port N         listen port (also env PORT); 0 picks a free port\n"
                "  --host ADDR      bind address (servers.web.bindIP)\n"
                "  --public DIR     public directory (servers.web.publicDir)\n"
                "  --log-level L    debug, info, warn, error or none (general.logLevel)\n"
                "  --workers N      event loops, one thread each (general.workers): 0 = one per core this process may run on\n"
                "  --check-config   validate the configuration and exit (status 2 when invalid)\n"
                "  --version        print the version\n"
                "\n"
                "Environment: PORT (listen port), REDIS_URL (redis://[:password@]host:port[/db]: cluster mode).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"host", required_argument, NULL, 'H'},
                                         {"public", required_argument, NULL, 'P'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *port = NULL, *host = NULL, *public_dir = NULL, *log_level = NULL, *workers = NULL;
    int check_only = 0, ch;
    while ((ch = getopt_long(argc, argv, "c:p:H:P:l:w:Cvh", opts, NULL)) != -1) {
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
        case 'w':
            workers = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'v':
            printf("actiongate %s\n", ag_version());
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
    if (check_only) {
        if (config_path != NULL && ag_check_config(config_path, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        printf("%s: ok\n", config_path != NULL ? config_path : "(built-in defaults)");
        return 0;
    }
    /* defaults < file < environment < command line */
    ag_options_t o = {
        .config_path = config_path, .host = host, .public_dir = public_dir, .log_level = log_level, .workers = AG_WORKERS_CONFIG};
    const char *env;
    if (port == NULL && (env = getenv("PORT")) != NULL && env[0] != '\0')
        port = env;
    if ((env = getenv("REDIS_URL")) != NULL && env[0] != '\0')
        o.redis_url = env;
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end != '\0' || end == port || p < 0 || p > 65535) {
            fprintf(stderr, "--port: not a port number: %s\n", port);
            return 2;
        }
        o.port = p == 0 ? AG_PORT_ANY : (int)p;
    }
    if (workers != NULL) {
        char *end;
        long n = strtol(workers, &end, 10);
        if (*end != '\0' || end == workers || n < 0 || n > 64) {
            fprintf(stderr, "--workers: a number from 0 (one per core this process may run on) to 64: %s\n", workers);
            return 2;
        }
        o.workers = n == 0 ? AG_WORKERS_CORES : (int)n;
    }
    if (log_level != NULL && strcmp(log_level, "debug") != 0 && strcmp(log_level, "info") != 0 && strcmp(log_level, "warn") != 0 &&
        strcmp(log_level, "error") != 0 && strcmp(log_level, "none") != 0) {
        fprintf(stderr, "--log-level: one of debug, info, warn, error, none\n");
        return 2;
    }

    ag_server_t *s;
    int ret = ag_create_ex(&o, &s, err, sizeof(err));
    if (ret != 0) {
        /* a configuration or module error is the operator's to fix (2); anything else is the node failing to start */
        fprintf(stderr, ret == AG_ECONFIG ? "%s\n" : "actiongate: %s\n", err);
        return ret == AG_ECONFIG ? 2 : 1;
    }
    ret = ag_run(s);
    ag_destroy(s);
    return ret;
}
