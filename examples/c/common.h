/* What the C examples share: their settings, read from the environment, the few steps every one of them
 * takes (creating the client, reporting a failed call) and how main() waits for what the event callback
 * records. */
#ifndef COBRA_EXAMPLES_COMMON_H
#define COBRA_EXAMPLES_COMMON_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

/* Prints why `what` failed (the status and the library's last error message); returns the exit status 1. */
static inline int fail(const char *what, cobra_status_t status) {
    fprintf(stderr, "%s: %s: %s\n", what, cobra_status_str(status), cobra_last_error_message());
    return 1;
}

/* A client configured from the environment whose events go to `on_event` with `user_data`, not yet
 * connected; NULL (and why, on stderr) when it cannot be created. */
static inline cobra_client_t *client_from_env(cobra_event_callback_t on_event, void *user_data) {
    cobra_client_t *client = NULL;
    cobra_status_t st = cobra_client_new(config_from_env(), on_event, user_data, &client); /* takes the config */
    if (st != COBRA_STATUS_OK) fail("cobra_client_new", st);
    return client;
}

/* Subscribes to `channel` through the StreamSQL `filter` as `id`, then connects (subscribing first is fine:
 * the subscription is sent once the connection is authenticated). Returns 1; on failure prints why, frees
 * the client and returns 0. */
static inline int subscribe_and_connect(cobra_client_t *client, const char *channel, const char *id,
                                        const char *filter) {
    cobra_status_t st = cobra_client_subscribe(client, channel, id, filter, NULL, 0, false);
    if (st == COBRA_STATUS_OK) st = cobra_client_connect(client);
    if (st == COBRA_STATUS_OK) return 1;
    fail("subscribe/connect", st);
    cobra_client_free(client);
    return 0;
}

/* The wall-clock time `seconds` from now, as pthread_cond_timedwait wants its deadline. */
static inline struct timespec deadline_in(time_t seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    return deadline;
}

/* What an example's event callback shares with its main(). The callback runs on the client's engine thread:
 * it records each event under `lock` (through the example's `record`), then wakes main() through `changed`.
 * A refused subscription sets `failed`, which ends main()'s wait. Each example puts it first in its own state,
 * so `record` and the wait's `done` get the example's state by a cast. */
struct shared {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int failed;
    void (*record)(struct shared *shared, const cobra_event_t *event); /* the event's strings die with the call */
};

#define SHARED_INIT(record) {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, (record)}

/* The event callback of every example; `user_data` is its struct shared. */
static inline void on_event(const cobra_event_t *event, void *user_data) {
    struct shared *shared = user_data;
    pthread_mutex_lock(&shared->lock);
    if (event->kind == COBRA_EVENT_SUBSCRIPTION_ERROR) {
        fprintf(stderr, "subscription refused: %s: %s\n", event->error, event->reason);
        shared->failed = 1;
    } else {
        shared->record(shared, event);
    }
    pthread_cond_broadcast(&shared->changed);
    pthread_mutex_unlock(&shared->lock);
}

/* Waits until `done` (asked under the lock), a failure or the deadline; returns whether it is done without
 * a failure. */
static inline int wait_until(struct shared *shared, int (*done)(struct shared *shared),
                             const struct timespec *deadline) {
    pthread_mutex_lock(&shared->lock);
    while (!done(shared) && !shared->failed &&
           pthread_cond_timedwait(&shared->changed, &shared->lock, deadline) == 0) {
    }
    int ok = done(shared) && !shared->failed;
    pthread_mutex_unlock(&shared->lock);
    return ok;
}

#endif
