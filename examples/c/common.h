/* What the C examples share: their settings, read from the environment. */
#ifndef COBRA_EXAMPLES_COMMON_H
#define COBRA_EXAMPLES_COMMON_H

#include <stdlib.h>

#include "cobra.h"

/* The environment variable `name`, or `fallback` when it is unset or empty. */
static inline const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* A client config from COBRA_ENDPOINT (default ws://127.0.0.1:8765), COBRA_APPKEY (_pubsub),
 * COBRA_ROLE (pubsub) and COBRA_SECRET; cobra_client_new takes it. */
static inline cobra_config_t *config_from_env(void) {
    cobra_config_t *config = cobra_config_new();
    cobra_config_set_endpoint(config, env_or("COBRA_ENDPOINT", "ws://127.0.0.1:8765"));
    cobra_config_set_appkey(config, env_or("COBRA_APPKEY", "_pubsub"));
    cobra_config_set_role(config, env_or("COBRA_ROLE", "pubsub"));
    cobra_config_set_secret(config, env_or("COBRA_SECRET", ""));
    return config;
}

#endif
