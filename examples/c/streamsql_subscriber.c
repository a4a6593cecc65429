/* StreamSQL subscriber, in C: the server filters the telemetry stream and sends only slow frames.
 *
 * Prints "subscribed" once the subscription is active, then each matching message (JSON) on its own
 * line, and exits after [count] messages (exit 0) or after 30 s without them (exit 1).
 *
 *   COBRA_ENDPOINT=... COBRA_APPKEY=... COBRA_ROLE=... COBRA_SECRET=... ./streamsql_subscriber [count]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cobra.h"
#include "common.h"

struct state {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned long received;
    int failed;
};

/* Runs on the client's engine thread. The event's strings are valid only during this call. */
static void on_event(const cobra_event_t *event, void *user_data) {
    struct state *s = user_data;
    pthread_mutex_lock(&s->lock);
    switch (event->kind) {
        case COBRA_EVENT_SUBSCRIBED:
            printf("subscribed\n");
            fflush(stdout);
            break;
        case COBRA_EVENT_SUBSCRIPTION_DATA:
            for (size_t i = 0; i < event->message_count; i++) printf("%s\n", event->messages[i]);
            fflush(stdout);
            s->received += event->message_count;
            break;
        case COBRA_EVENT_SUBSCRIPTION_ERROR:
            fprintf(stderr, "subscription refused: %s: %s\n", event->error, event->reason);
            s->failed = 1;
            break;
        default:
            break;
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

int main(int argc, char **argv) {
    unsigned long count = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
    const char *fps_id = env_or("COBRA_FPS_ID", "engine_fps_id");
    struct state s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

    cobra_config_t *config = config_from_env();
    cobra_client_t *client = NULL;
    cobra_status_t st = cobra_client_new(config, on_event, &s, &client);
    if (st != COBRA_STATUS_OK) {
        fprintf(stderr, "cobra_client_new: %s\n", cobra_last_error_message());
        return 1;
    }

    char filter[256];
    snprintf(filter, sizeof filter,
             "select data.fps, data.frame, device.game from `%s` where data.fps < 30", fps_id);
    /* Subscribing before connecting is fine: it is sent once the connection is authenticated. */
    st = cobra_client_subscribe(client, fps_id, "slow-frames", filter, NULL, 0, false);
    if (st == COBRA_STATUS_OK) st = cobra_client_connect(client);
    if (st != COBRA_STATUS_OK) {
        fprintf(stderr, "subscribe/connect: %s\n", cobra_last_error_message());
        cobra_client_free(client);
        return 1;
    }

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&s.lock);
    while (s.received < count && !s.failed && pthread_cond_timedwait(&s.changed, &s.lock, &deadline) == 0) {
    }
    int ok = s.received >= count && !s.failed;
    pthread_mutex_unlock(&s.lock);
    cobra_client_free(client);
    if (!ok) fprintf(stderr, "received %lu of %lu messages\n", s.received, count);
    return ok ? 0 : 1;
}
