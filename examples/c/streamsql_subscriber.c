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
    struct shared shared; /* first: see common.h */
    unsigned long received;
    unsigned long count;
};

/* Runs on the client's engine thread, under the lock. The event's strings are valid only during this call. */
static void record(struct shared *shared, const cobra_event_t *event) {
    struct state *s = (struct state *)shared;
    if (event->kind == COBRA_EVENT_SUBSCRIBED) printf("subscribed\n");
    if (event->kind == COBRA_EVENT_SUBSCRIPTION_DATA) {
        for (size_t i = 0; i < event->message_count; i++) printf("%s\n", event->messages[i]);
        s->received += event->message_count;
    }
    fflush(stdout);
}

static int all_received(struct shared *shared) {
    struct state *s = (struct state *)shared;
    return s->received >= s->count;
}

int main(int argc, char **argv) {
    const char *fps_id = env_or("COBRA_FPS_ID", "engine_fps_id");
    struct state s = {SHARED_INIT(record), 0, argc > 1 ? strtoul(argv[1], NULL, 10) : 10};

    cobra_client_t *client = client_from_env(on_event, &s);
    if (!client) return 1;

    char filter[256];
    snprintf(filter, sizeof filter,
             "select data.fps, data.frame, device.game from `%s` where data.fps < 30", fps_id);
    if (!subscribe_and_connect(client, fps_id, "slow-frames", filter)) return 1;

    struct timespec deadline = deadline_in(30);
    int ok = wait_until(&s.shared, all_received, &deadline);
    cobra_client_free(client); /* joins the engine thread: no callback runs after this */
    if (!ok) fprintf(stderr, "received %lu of %lu messages\n", s.received, s.count);
    return ok ? 0 : 1;
}
