/* Telemetry publisher: what a game does each frame, in C.
 *
 * Connects, sets the device attributes once, then pushes one `engine_fps_id` event per simulated frame
 * through the metrics publisher and waits until the server acknowledged every event.
 *
 *   COBRA_ENDPOINT=ws://127.0.0.1:8765 COBRA_APPKEY=_pubsub COBRA_ROLE=pubsub COBRA_SECRET=... \
 *     ./telemetry_publisher [frames]          (COBRA_FPS_ID renames the event id; default engine_fps_id)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cobra.h"
#include "common.h"

struct acks {
    struct shared shared; /* first: see common.h */
    unsigned long published; /* counted by main() only */
    unsigned long acked;
    unsigned long dropped;
};

/* Runs on the client's engine thread, under the lock: only count. */
static void record(struct shared *shared, const cobra_event_t *event) {
    struct acks *acks = (struct acks *)shared;
    if (event->kind == COBRA_EVENT_PUBLISHED) acks->acked++;
    if (event->kind == COBRA_EVENT_PUBLISH_DROPPED) acks->dropped++;
    if (event->kind == COBRA_EVENT_ERROR) fprintf(stderr, "connection error: %s\n", event->reason);
}

static int all_answered(struct shared *shared) {
    struct acks *acks = (struct acks *)shared;
    return acks->acked + acks->dropped >= acks->published;
}

int main(int argc, char **argv) {
    unsigned long frames = argc > 1 ? strtoul(argv[1], NULL, 10) : 80;
    const char *fps_id = env_or("COBRA_FPS_ID", "engine_fps_id");
    struct acks acks = {SHARED_INIT(record), 0, 0, 0};

    cobra_client_t *client = client_from_env(on_event, &acks);
    if (!client) return 1;
    cobra_status_t st = cobra_client_connect(client);
    if (st != COBRA_STATUS_OK) return fail("cobra_client_connect", st);

    cobra_metrics_t *metrics = NULL;
    if ((st = cobra_metrics_new(client, "telemetry", &metrics)) != COBRA_STATUS_OK) return fail("cobra_metrics_new", st);
    cobra_metrics_set_device_attributes(
        metrics, "{\"game\":\"demo\",\"os_name\":\"Linux\",\"model\":\"desktop\",\"app_version\":\"1.0\"}");

    /* Events are queued at once (never blocking the frame) and sent when the connection is up. */
    for (unsigned long frame = 0; frame < frames; frame++) {
        char data[64];
        snprintf(data, sizeof data, "{\"fps\":%lu,\"frame\":%lu}", 20 + (frame * 7) % 40, frame);
        cobra_push_outcome_t outcome;
        if ((st = cobra_metrics_push(metrics, fps_id, data, &outcome, NULL)) != COBRA_STATUS_OK)
            return fail("cobra_metrics_push", st);
        if (outcome == COBRA_PUSH_PUBLISHED) acks.published++;
    }

    struct timespec deadline = deadline_in(20);
    wait_until(&acks.shared, all_answered, &deadline);
    pthread_mutex_lock(&acks.shared.lock);
    unsigned long published = acks.published, acked = acks.acked, dropped = acks.dropped;
    pthread_mutex_unlock(&acks.shared.lock);
    printf("pushed %lu %s events: %lu acknowledged, %lu dropped\n", published, fps_id, acked, dropped);

    cobra_metrics_free(metrics);
    cobra_client_free(client); /* after this no callback runs, so `acks` may go */
    return acked == published ? 0 : 1;
}
