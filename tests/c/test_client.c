/* End-to-end test of the C ABI against a real cobra server (started by scripts/test-c.sh).
 *
 * Environment: COBRA_ENDPOINT, COBRA_APPKEY, COBRA_ROLE, COBRA_SECRET; COBRA_TEST_RESTART_CMD, a shell
 * command that restarts the server on the same port (the reconnect check); COBRA_TEST_SLOW=1 stretches
 * every deadline (valgrind).
 * Output: one line per check, then "N passed, N failed"; exit status 0 only if nothing failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cobra.h"

static int passed, failed;
static atomic_int log_records;

static void on_log(cobra_log_level_t level, const char *target, const char *message, void *user_data) {
    (void)user_data;
    if (level >= COBRA_LOG_ERROR && level <= COBRA_LOG_TRACE && target && message) atomic_fetch_add(&log_records, 1);
}

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
        } else {                                                            \
            failed++;                                                       \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
            printf(__VA_ARGS__);                                            \
            printf(" (last error: %s)\n", cobra_last_error_message());      \
        }                                                                   \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                          \
    do {                                                                                      \
        cobra_status_t st_ = (expr);                                                          \
        CHECK(st_ == (expected), "%s returned %s, expected %s", #expr, cobra_status_str(st_), \
              cobra_status_str(expected));                                                    \
    } while (0)

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static int slow_factor(void) { return getenv("COBRA_TEST_SLOW") ? 6 : 1; }

/* ---- event recorder: the callback's user_data ------------------------------------------------ */

#define MAX_IDS 4096

typedef struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int authenticated;
    int closed;
    int subscribed;
    int subscription_errors;
    int published;
    int dropped;
    int data_messages;
    int fps_seen[16]; /* data.fps / 10 of each filtered message received */
    bool sentinel_seen;
    bool saw_wrong_kind;
    int metrics_received;
    int metrics_with_envelope;
    /* aggregate scenario: the rows of subscriptions "agg" and "agg_again", copied */
    int agg_rows[2];
    char agg_row[2][4][1024];
    bool agg_overflow;
    uint64_t acked_ids[MAX_IDS];
    int acked_count;
    /* free-from-callback scenario */
    cobra_client_t *self_free_target;
    cobra_status_t self_free_status;
    cobra_status_t blocking_in_callback_status;
    bool self_freed;
    int events_after_self_free;
} recorder;

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
}

static void recorder_destroy(recorder *r) {
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

static int field_int(const char *json, size_t len, const char *key) {
    /* Tiny helper for the flat projections this test subscribes to: finds "key": and parses an int. */
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *end = json + len;
    const char *p = strstr(json, pattern);
    if (!p || p >= end) return -1;
    return atoi(p + strlen(pattern));
}

static void on_event(const cobra_event_t *ev, void *user_data) {
    recorder *r = user_data;
    pthread_mutex_lock(&r->lock);
    if (r->self_freed) r->events_after_self_free++;
    switch (ev->kind) {
        case COBRA_EVENT_AUTHENTICATED:
            r->authenticated++;
            break;
        case COBRA_EVENT_CLOSED:
            r->closed++;
            if (!ev->reason) r->saw_wrong_kind = true;
            break;
        case COBRA_EVENT_SUBSCRIBED:
            r->subscribed++;
            if (!ev->subscription_id) r->saw_wrong_kind = true;
            break;
        case COBRA_EVENT_SUBSCRIPTION_ERROR:
            r->subscription_errors++;
            printf("subscription error: %s: %s\n", ev->error, ev->reason);
            break;
        case COBRA_EVENT_PUBLISHED:
            r->published++;
            if (r->acked_count < MAX_IDS) r->acked_ids[r->acked_count++] = ev->publish_id;
            break;
        case COBRA_EVENT_PUBLISH_DROPPED:
            r->dropped++;
            break;
        case COBRA_EVENT_SUBSCRIPTION_DATA:
            if (!ev->subscription_id || (ev->message_count > 0 && (!ev->messages || !ev->message_lens))) {
                r->saw_wrong_kind = true;
                break;
            }
            for (size_t i = 0; i < ev->message_count; i++) {
                const char *m = ev->messages[i];
                size_t len = ev->message_lens[i];
                if (strlen(m) != len) r->saw_wrong_kind = true;
                int agg = strcmp(ev->subscription_id, "agg") == 0 ? 0 : strcmp(ev->subscription_id, "agg_again") == 0 ? 1 : -1;
                if (agg >= 0) {
                    if (r->agg_rows[agg] < 4 && len < sizeof r->agg_row[agg][0])
                        memcpy(r->agg_row[agg][r->agg_rows[agg]++], m, len + 1);
                    else
                        r->agg_overflow = true;
                    continue;
                }
                if (strcmp(ev->subscription_id, "metrics") == 0) {
                    r->metrics_received++;
                    if (strstr(m, "\"my-session\"") && strstr(m, "\"ctest\"") && strstr(m, "\"data.fps\":60"))
                        r->metrics_with_envelope++;
                    continue;
                }
                r->data_messages++;
                if (strstr(m, "\"sentinel\"")) {
                    r->sentinel_seen = true;
                    continue;
                }
                int fps = field_int(m, len, "fps");
                if (fps >= 0 && fps / 10 < 16) r->fps_seen[fps / 10]++;
            }
            break;
        default:
            break;
    }
    if (r->self_free_target && ev->kind == COBRA_EVENT_AUTHENTICATED && !r->self_freed) {
        char *json = NULL;
        r->blocking_in_callback_status = cobra_client_read(r->self_free_target, "any", 1000, &json);
        r->self_free_status = cobra_client_free(r->self_free_target);
        r->self_freed = true;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

/* Waits until *counter >= target or the deadline passes. Returns the final value. */
static int wait_for(recorder *r, const int *counter, int target, int seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds * slow_factor();
    pthread_mutex_lock(&r->lock);
    while (*counter < target) {
        if (pthread_cond_timedwait(&r->changed, &r->lock, &deadline) == ETIMEDOUT) break;
    }
    int value = *counter;
    pthread_mutex_unlock(&r->lock);
    return value;
}

static bool wait_flag(recorder *r, const bool *flag, int seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds * slow_factor();
    pthread_mutex_lock(&r->lock);
    while (!*flag) {
        if (pthread_cond_timedwait(&r->changed, &r->lock, &deadline) == ETIMEDOUT) break;
    }
    bool value = *flag;
    pthread_mutex_unlock(&r->lock);
    return value;
}

static int locked_get(recorder *r, const int *counter) {
    pthread_mutex_lock(&r->lock);
    int v = *counter;
    pthread_mutex_unlock(&r->lock);
    return v;
}

/* Polls the client state until it is `want` or the deadline passes (the state is published by the engine
 * thread, possibly just after the event that announced it). */
static cobra_client_state_t wait_state(cobra_client_t *client, cobra_client_state_t want, int seconds) {
    cobra_client_state_t state = COBRA_STATE_STOPPED;
    struct timespec now, deadline, pause = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += seconds * slow_factor();
    for (;;) {
        if (cobra_client_state(client, &state) != COBRA_STATUS_OK || state == want) return state;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            return state;
        nanosleep(&pause, NULL);
    }
}

static cobra_config_t *make_config(void) {
    cobra_config_t *config = cobra_config_new();
    CHECK(config != NULL, "cobra_config_new");
    CHECK_STATUS(cobra_config_set_endpoint(config, env_or("COBRA_ENDPOINT", "ws://127.0.0.1:8765")), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_appkey(config, env_or("COBRA_APPKEY", "_pubsub")), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_role(config, env_or("COBRA_ROLE", "pubsub")), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_secret(config, env_or("COBRA_SECRET", "")), COBRA_STATUS_OK);
    /* Fast reconnects for the restart check. */
    CHECK_STATUS(cobra_config_set_backoff(config, 50, 500), COBRA_STATUS_OK);
    return config;
}

/* A client on the test server whose events `rec` (initialised here) records; not connected yet. */
static cobra_client_t *new_recorded_client(recorder *rec) {
    recorder_init(rec);
    cobra_client_t *client = NULL;
    CHECK_STATUS(cobra_client_new(make_config(), on_event, rec, &client), COBRA_STATUS_OK);
    return client;
}

static char channel_name[64];

static const char *unique_channel(const char *base) {
    snprintf(channel_name, sizeof channel_name, "%s_%ld_%ld", base, (long)time(NULL), (long)clock());
    return channel_name;
}

static cobra_status_t spoil_deflate(cobra_config_t *c) { return cobra_config_set_deflate_options(c, 8, 15, false, false); }
static cobra_status_t spoil_pin(cobra_config_t *c) { return cobra_config_add_tls_pin(c, "not-a-pin"); }
static cobra_status_t spoil_heartbeat(cobra_config_t *c) { return cobra_config_set_heartbeat(c, 1000, 0); }
static cobra_status_t spoil_backoff(cobra_config_t *c) { return cobra_config_set_backoff(c, 2000, 1000); }
static cobra_status_t spoil_proxy(cobra_config_t *c) { return cobra_config_set_proxy(c, "socks5://p:1"); }
static cobra_status_t spoil_header(cobra_config_t *c) { return cobra_config_add_header(c, "Bad Name", "v"); }

/* ---- misuse that needs no server --------------------------------------------------------------- */

static void test_misuse_without_server(void) {
    printf("-- misuse: NULL handles and arguments, double free, wrong types, bad UTF-8\n");
    CHECK(strlen(cobra_version()) > 0, "version");
    CHECK(strcmp(cobra_status_str(COBRA_STATUS_OK), "ok") == 0, "status_str");
    CHECK(strcmp(cobra_status_str(9999), "unknown status") == 0, "status_str of garbage");

    /* NULL handles: an error, never a crash. */
    CHECK_STATUS(cobra_client_connect(NULL), COBRA_STATUS_INVALID_HANDLE);
    CHECK(strstr(cobra_last_error_message(), "NULL") != NULL, "message names the problem: %s",
          cobra_last_error_message());
    CHECK_STATUS(cobra_client_disconnect(NULL), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_client_free(NULL), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_client_publish(NULL, "c", "{}", NULL), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_client_subscribe(NULL, "c", NULL, NULL, NULL, 0, false), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_config_free(NULL), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_config_set_endpoint(NULL, "ws://x:1"), COBRA_STATUS_INVALID_HANDLE);
    cobra_client_t *out = (cobra_client_t *)1;
    CHECK_STATUS(cobra_client_new(NULL, NULL, NULL, &out), COBRA_STATUS_INVALID_HANDLE);
    CHECK(out == NULL, "out_client is reset on failure");
    cobra_string_free(NULL);

    /* NULL arguments. */
    cobra_config_t *config = cobra_config_new();
    CHECK_STATUS(cobra_config_set_endpoint(config, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_config_set_endpoint_n(config, NULL, 3), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_config_set_endpoint_n(config, "ws://127.0.0.1:1xxxx", 17), COBRA_STATUS_OK);
    /* Invalid UTF-8 is refused. */
    CHECK_STATUS(cobra_config_set_role(config, "\xff\xfe"), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(cobra_last_error_message(), "UTF-8") != NULL, "%s", cobra_last_error_message());
    CHECK_STATUS(cobra_config_set_queue_limits(config, 10, 1000, 42), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_config_set_delivery(config, -1), COBRA_STATUS_INVALID_ARGUMENT);

    /* A handle of the wrong type is detected. */
    CHECK_STATUS(cobra_client_connect((cobra_client_t *)config), COBRA_STATUS_INVALID_HANDLE);

    /* Double free of a config. */
    CHECK_STATUS(cobra_config_free(config), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_free(config), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_config_set_role(config, "r"), COBRA_STATUS_INVALID_HANDLE);

    /* cobra_client_new consumes the config even when it fails (here: no appkey). */
    config = cobra_config_new();
    cobra_config_set_endpoint(config, "ws://127.0.0.1:1");
    CHECK_STATUS(cobra_client_new(config, NULL, NULL, &out), COBRA_STATUS_CONFIG);
    CHECK(strstr(cobra_last_error_message(), "appkey") != NULL, "names the field: %s", cobra_last_error_message());
    CHECK_STATUS(cobra_config_free(config), COBRA_STATUS_INVALID_HANDLE);
    /* A bad endpoint is a config error. */
    config = cobra_config_new();
    cobra_config_set_endpoint(config, "http://nope");
    cobra_config_set_appkey(config, "k");
    cobra_config_set_role(config, "r");
    CHECK_STATUS(cobra_client_new(config, NULL, NULL, &out), COBRA_STATUS_CONFIG);
    /* NULL out pointer: refused, config still consumed. */
    config = make_config();
    CHECK_STATUS(cobra_client_new(config, NULL, NULL, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_config_free(config), COBRA_STATUS_INVALID_HANDLE);

    /* Every setter, with valid values: accepted by cobra_client_new. */
    config = make_config();
    CHECK_STATUS(cobra_config_set_tls_ca_pem(config, NULL), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_tls_roots(config, true, false), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_deflate(config, false), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_deflate_options(config, 12, 15, true, false), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_heartbeat(config, 10000, 5000), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_queue_limits(config, 100, 1 << 20, COBRA_OVERFLOW_REFUSE_NEW), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_delivery(config, COBRA_DELIVERY_AT_MOST_ONCE), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_spool(config, NULL, 0), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_max_message_size(config, 1 << 20), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_proxy(config, NULL), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_add_header(config, "X-Game", "demo"), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_user_agent(config, "c-test/1"), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_config_set_timeouts(config, 5000, 5000, 5000), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_new(config, NULL, NULL, &out), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_free(out), COBRA_STATUS_OK);
    /* Invalid values are named when the client is created. */
    const struct {
        const char *field;
        cobra_status_t (*spoil)(cobra_config_t *);
    } spoilers[] = {
        {"client_max_window_bits", spoil_deflate},
        {"spki_pins", spoil_pin},
        {"pong_timeout", spoil_heartbeat},
        {"backoff_max", spoil_backoff},
        {"proxy", spoil_proxy},
        {"extra_headers", spoil_header},
    };
    for (size_t i = 0; i < sizeof spoilers / sizeof spoilers[0]; i++) {
        config = make_config();
        CHECK_STATUS(spoilers[i].spoil(config), COBRA_STATUS_OK);
        CHECK_STATUS(cobra_client_new(config, NULL, NULL, &out), COBRA_STATUS_CONFIG);
        CHECK(strstr(cobra_last_error_message(), spoilers[i].field) != NULL, "names %s: %s", spoilers[i].field,
              cobra_last_error_message());
    }

    /* A client that never connects: argument checks and double free. */
    cobra_client_t *client = NULL;
    CHECK_STATUS(cobra_client_new(make_config(), NULL, NULL, &client), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_publish(client, NULL, "{}", NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_publish(client, "c", NULL, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_publish(client, "c", "{not json", NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_publish_channels(client, NULL, 0, "{}", NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_subscribe(client, NULL, NULL, NULL, NULL, 0, false), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_unsubscribe(client, "never-subscribed"), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_read(client, "k", 100, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_write(client, "k", "{bad", 100), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_state(client, NULL), COBRA_STATUS_INVALID_ARGUMENT);

    /* Metrics publisher misuse; it does not keep its client alive. */
    cobra_metrics_t *metrics = NULL;
    CHECK_STATUS(cobra_metrics_new(NULL, "m", &metrics), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_metrics_new(client, NULL, &metrics), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_new(client, "m", NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_new(client, "m", &metrics), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_push(metrics, "id", "{bad", NULL, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_push(metrics, NULL, "{}", NULL, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_set_device_attributes(metrics, "[1]"), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_set_device_attribute(metrics, "game", "not json"), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_set_blacklist(metrics, NULL, 2), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_set_rate_control(metrics, NULL, NULL, 0), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_stats(metrics, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_metrics_push((cobra_metrics_t *)client, "id", "{}", NULL, NULL), COBRA_STATUS_INVALID_HANDLE);
    cobra_push_outcome_t outcome = COBRA_PUSH_DISABLED;
    uint64_t publish_id = 0;
    CHECK_STATUS(cobra_metrics_push(metrics, "id", "{\"fps\":1}", &outcome, &publish_id), COBRA_STATUS_OK);
    CHECK(outcome == COBRA_PUSH_PUBLISHED && publish_id > 0, "queued while offline: outcome %d id %" PRIu64,
          (int)outcome, publish_id);
    cobra_client_state_t state = COBRA_STATE_STOPPED;
    CHECK_STATUS(cobra_client_state(client, &state), COBRA_STATUS_OK);
    CHECK(state == COBRA_STATE_DISCONNECTED, "state %d", (int)state);
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_client_publish(client, "c", "{}", NULL), COBRA_STATUS_INVALID_HANDLE);
    /* The client is gone: the publisher reports it instead of crashing. */
    CHECK_STATUS(cobra_metrics_push(metrics, "id", "{}", NULL, NULL), COBRA_STATUS_CLOSED);
    CHECK_STATUS(cobra_metrics_free(metrics), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_free(metrics), COBRA_STATUS_INVALID_HANDLE);
}

/* ---- freeing a client while other threads are calling into it ------------------------------------ */

typedef struct racer {
    cobra_client_t *client;
    atomic_int *calls;
    cobra_status_t final_status;
} racer;

static void *racer_thread(void *p) {
    racer *r = p;
    for (;;) {
        cobra_status_t st = cobra_client_publish(r->client, "race", "{\"n\":1}", NULL);
        if (st != COBRA_STATUS_OK) {
            r->final_status = st;
            return NULL;
        }
        atomic_fetch_add(r->calls, 1);
    }
}

static void test_free_while_in_use(void) {
    printf("-- free a client while 4 threads publish through it\n");
    cobra_client_t *client = NULL;
    CHECK_STATUS(cobra_client_new(make_config(), NULL, NULL, &client), COBRA_STATUS_OK);
    atomic_int calls = 0;
    racer racers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        racers[i] = (racer){client, &calls, COBRA_STATUS_OK};
        pthread_create(&threads[i], NULL, racer_thread, &racers[i]);
    }
    struct timespec pause = {0, 1000 * 1000};
    while (atomic_load(&calls) < 2000) nanosleep(&pause, NULL); /* every thread is busy in the library */
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_OK);
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(racers[i].final_status == COBRA_STATUS_INVALID_HANDLE, "racer %d ended with %s", i,
              cobra_status_str(racers[i].final_status));
    }
}

/* ---- the real thing ----------------------------------------------------------------------------- */

typedef struct publisher_arg {
    cobra_client_t *client;
    const char *channel;
    int index;
    int ok;
    uint64_t ids[100];
} publisher_arg;

static void *publisher_thread(void *p) {
    publisher_arg *a = p;
    char json[128];
    for (int i = 0; i < 100; i++) {
        snprintf(json, sizeof json, "{\"thread\":%d,\"seq\":%d,\"data\":{\"fps\":99}}", a->index, i);
        if (cobra_client_publish(a->client, a->channel, json, &a->ids[i]) == COBRA_STATUS_OK) a->ok++;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_against_server(void) {
    printf("-- log callback (once per process)\n");
    CHECK_STATUS(cobra_set_log_callback(COBRA_LOG_INFO, NULL, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_set_log_callback(42, on_log, NULL), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_set_log_callback(COBRA_LOG_INFO, on_log, NULL), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_set_log_callback(COBRA_LOG_INFO, on_log, NULL), COBRA_STATUS_INVALID_ARGUMENT);

    printf("-- connect\n");
    recorder rec;
    cobra_client_t *client = new_recorded_client(&rec);
    CHECK_STATUS(cobra_client_connect(client), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.authenticated, 1, 10) >= 1, "authenticated");
    cobra_client_state_t state = wait_state(client, COBRA_STATE_CONNECTED, 5);
    CHECK(state == COBRA_STATE_CONNECTED, "state %d", (int)state);

    printf("-- subscribe with a StreamSQL filter, publish, receive exactly the matching messages\n");
    char channel[64];
    snprintf(channel, sizeof channel, "%s", unique_channel("c_test"));
    char filter[256];
    snprintf(filter, sizeof filter,
             "select data.fps as fps, kind from `%s` where data.fps < 30 or kind = 'sentinel'", channel);
    CHECK_STATUS(cobra_client_subscribe(client, channel, "filtered", filter, NULL, 0, false), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_subscribe(client, channel, "filtered", NULL, NULL, 0, false),
                 COBRA_STATUS_INVALID_ARGUMENT); /* duplicate id */
    CHECK(wait_for(&rec, &rec.subscribed, 1, 10) >= 1, "subscribed");
    uint64_t last_id = 0;
    char json[256];
    for (int fps = 0; fps < 100; fps += 10) {
        snprintf(json, sizeof json, "{\"kind\":\"frame\",\"data\":{\"fps\":%d}}", fps);
        CHECK_STATUS(cobra_client_publish(client, channel, json, &last_id), COBRA_STATUS_OK);
    }
    /* _n variant with a buffer that is not NUL-terminated. */
    const char buffer[] = {'{', '"', 'k', 'i', 'n', 'd', '"', ':', '"', 's', 'e', 'n', 't', 'i', 'n', 'e', 'l', '"',
                           '}', 'X', 'X'};
    CHECK_STATUS(cobra_client_publish_n(client, channel, strlen(channel), buffer, 19, &last_id), COBRA_STATUS_OK);
    CHECK(wait_flag(&rec, &rec.sentinel_seen, 10), "the sentinel arrives");
    pthread_mutex_lock(&rec.lock);
    CHECK(rec.fps_seen[0] == 1 && rec.fps_seen[1] == 1 && rec.fps_seen[2] == 1, "fps 0, 10, 20 each once");
    int others = 0;
    for (int i = 3; i < 16; i++) others += rec.fps_seen[i];
    CHECK(others == 0, "%d messages the filter should have dropped", others);
    CHECK(rec.data_messages == 4, "exactly 4 messages delivered, got %d", rec.data_messages);
    pthread_mutex_unlock(&rec.lock);
    CHECK(wait_for(&rec, &rec.published, 11, 10) >= 11, "every publish acknowledged");

    printf("-- publish to several channels\n");
    const char *channels[] = {channel, "c_test_other"};
    snprintf(json, sizeof json, "{\"kind\":\"frame\",\"data\":{\"fps\":10}}");
    CHECK_STATUS(cobra_client_publish_channels(client, channels, 2, json, &last_id), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.fps_seen[1], 2, 10) >= 2, "the multi-channel message arrives");

    printf("-- read / write / delete\n");
    char key[96];
    snprintf(key, sizeof key, "%s_kv", channel);
    char *value = NULL;
    CHECK_STATUS(cobra_client_write(client, key, "{\"answer\":42}", 5000), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_read(client, key, 5000, &value), COBRA_STATUS_OK);
    CHECK(value && strstr(value, "\"answer\":42"), "read back %s", value ? value : "(null)");
    cobra_string_free(value);
    CHECK_STATUS(cobra_client_write_n(client, key, "[1,2,3]trailing", 7, 5000), COBRA_STATUS_OK);
    value = NULL;
    CHECK_STATUS(cobra_client_read(client, key, 5000, &value), COBRA_STATUS_OK);
    CHECK(value && strcmp(value, "[1,2,3]") == 0, "read back %s", value ? value : "(null)");
    cobra_string_free(value);
    CHECK_STATUS(cobra_client_delete(client, key, 5000), COBRA_STATUS_OK);
    value = (char *)"sentinel";
    CHECK_STATUS(cobra_client_read(client, key, 5000, &value), COBRA_STATUS_OK);
    CHECK(value == NULL, "deleted key reads as NULL");

    printf("-- any request: admin/get_connections\n");
    char *answer = NULL;
    CHECK_STATUS(cobra_client_request(client, "admin/get_connections", "{}", 5000, &answer), COBRA_STATUS_OK);
    CHECK(answer && strstr(answer, "\"connections\""), "answer %s", answer ? answer : "(null)");
    cobra_string_free(answer);
    CHECK_STATUS(cobra_client_request(client, NULL, "{}", 5000, &answer), COBRA_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cobra_client_request(client, "admin/get_connections", "{", 5000, &answer),
                 COBRA_STATUS_INVALID_ARGUMENT);

    printf("-- 8 threads publishing concurrently\n");
    int acked_before = locked_get(&rec, &rec.published);
    publisher_arg args[8];
    pthread_t threads[8];
    for (int t = 0; t < 8; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].client = client;
        args[t].channel = "c_test_concurrent";
        args[t].index = t;
        pthread_create(&threads[t], NULL, publisher_thread, &args[t]);
    }
    uint64_t all_ids[800];
    int ok = 0;
    for (int t = 0; t < 8; t++) {
        pthread_join(threads[t], NULL);
        ok += args[t].ok;
        memcpy(&all_ids[t * 100], args[t].ids, sizeof args[t].ids);
    }
    CHECK(ok == 800, "%d of 800 publishes accepted", ok);
    qsort(all_ids, 800, sizeof all_ids[0], cmp_u64);
    int dups = 0;
    for (int i = 1; i < 800; i++) dups += all_ids[i] == all_ids[i - 1];
    CHECK(dups == 0, "%d duplicate publish ids", dups);
    CHECK(wait_for(&rec, &rec.published, acked_before + 800, 20) >= acked_before + 800, "all 800 acknowledged");

    printf("-- reconnect after a server restart; the subscription survives\n");
    const char *restart = getenv("COBRA_TEST_RESTART_CMD");
    if (!restart) {
        printf("SKIP: COBRA_TEST_RESTART_CMD not set\n");
    } else {
        int auth_before = locked_get(&rec, &rec.authenticated);
        CHECK(system(restart) == 0, "restart command: %s", restart);
        CHECK(wait_for(&rec, &rec.closed, 1, 10) >= 1, "the drop is reported");
        CHECK(wait_for(&rec, &rec.authenticated, auth_before + 1, 20) > auth_before, "authenticated again");
        int seen = locked_get(&rec, &rec.fps_seen[2]);
        /* The re-subscription is sent right after authentication; publishes queued behind it. */
        CHECK(wait_for(&rec, &rec.subscribed, 2, 10) >= 2, "re-subscribed");
        snprintf(json, sizeof json, "{\"kind\":\"frame\",\"data\":{\"fps\":25}}");
        CHECK_STATUS(cobra_client_publish(client, channel, json, NULL), COBRA_STATUS_OK);
        CHECK(wait_for(&rec, &rec.fps_seen[2], seen + 1, 10) > seen, "delivery resumes after the restart");
        CHECK(atomic_load(&log_records) > 0, "the lost connection was logged through the log callback");
    }

    printf("-- suspend / resume / network_changed\n");
    int auth_before = locked_get(&rec, &rec.authenticated);
    CHECK_STATUS(cobra_client_suspend(client), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_resume(client), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.authenticated, auth_before + 1, 10) > auth_before, "authenticated after resume");
    auth_before = locked_get(&rec, &rec.authenticated);
    CHECK_STATUS(cobra_client_network_changed(client), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.authenticated, auth_before + 1, 10) > auth_before,
          "authenticated after network_changed");

    printf("-- metrics publisher: envelope, blacklist, enable, rate control\n");
    char fps_id[96];
    snprintf(fps_id, sizeof fps_id, "%s_fps", channel);
    char sql[256];
    snprintf(sql, sizeof sql, "select id, session, device.game, data.fps from `%s`", fps_id);
    int subscribed_before = locked_get(&rec, &rec.subscribed);
    CHECK_STATUS(cobra_client_subscribe(client, fps_id, "metrics", sql, NULL, 0, false), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.subscribed, subscribed_before + 1, 10) > subscribed_before, "metrics subscription");
    cobra_metrics_t *metrics = NULL;
    CHECK_STATUS(cobra_metrics_new(client, "c_test_metrics", &metrics), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_set_session(metrics, "my-session"), COBRA_STATUS_OK);
    char *session = NULL;
    CHECK_STATUS(cobra_metrics_session(metrics, &session), COBRA_STATUS_OK);
    CHECK(session && strcmp(session, "my-session") == 0, "session %s", session ? session : "(null)");
    cobra_string_free(session);
    CHECK_STATUS(cobra_metrics_set_device_attributes(metrics, "{\"os_name\":\"Linux\"}"), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_set_device_attribute(metrics, "game", "\"ctest\""), COBRA_STATUS_OK);
    cobra_push_outcome_t outcome;
    uint64_t push_id = 0;
    for (int i = 0; i < 5; i++) {
        CHECK_STATUS(cobra_metrics_push(metrics, fps_id, "{\"fps\":60}", &outcome, &push_id), COBRA_STATUS_OK);
        CHECK(outcome == COBRA_PUSH_PUBLISHED && push_id > 0, "outcome %d", (int)outcome);
    }
    const char *blacklist[] = {fps_id};
    CHECK_STATUS(cobra_metrics_set_blacklist(metrics, blacklist, 1), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_push(metrics, fps_id, "{\"fps\":60}", &outcome, NULL), COBRA_STATUS_OK);
    CHECK(outcome == COBRA_PUSH_BLACKLISTED, "outcome %d", (int)outcome);
    CHECK_STATUS(cobra_metrics_set_blacklist(metrics, NULL, 0), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_set_enabled(metrics, false), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_push(metrics, fps_id, "{\"fps\":60}", &outcome, NULL), COBRA_STATUS_OK);
    CHECK(outcome == COBRA_PUSH_DISABLED, "outcome %d", (int)outcome);
    CHECK_STATUS(cobra_metrics_set_enabled(metrics, true), COBRA_STATUS_OK);
    /* Rate control on a fresh id (the limit also counts events sent before it was set). */
    char rated_id[128];
    snprintf(rated_id, sizeof rated_id, "%s_rated", channel);
    const char *limited[] = {rated_id};
    const double one_hour[] = {3600.0};
    CHECK_STATUS(cobra_metrics_set_rate_control(metrics, limited, one_hour, 1), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_metrics_push_n(metrics, rated_id, strlen(rated_id), "{\"fps\":60}xx", 10, &outcome, NULL),
                 COBRA_STATUS_OK);
    CHECK(outcome == COBRA_PUSH_PUBLISHED, "first event under rate control: outcome %d", (int)outcome);
    CHECK_STATUS(cobra_metrics_push(metrics, rated_id, "{\"fps\":60}", &outcome, NULL), COBRA_STATUS_OK);
    CHECK(outcome == COBRA_PUSH_RATE_LIMITED, "second event within the hour: outcome %d", (int)outcome);
    cobra_metrics_stats_t stats;
    CHECK_STATUS(cobra_metrics_stats(metrics, &stats), COBRA_STATUS_OK);
    CHECK(stats.published == 6 && stats.blacklisted == 1 && stats.disabled == 1 && stats.rate_limited == 1 &&
              stats.failed == 0,
          "stats %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, stats.published, stats.blacklisted,
          stats.disabled, stats.rate_limited, stats.failed);
    /* A last event marks the end of the stream: then exactly the 5 + 1 published events must be there. */
    CHECK_STATUS(cobra_metrics_push(metrics, fps_id, "{\"fps\":60}", &outcome, NULL), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.metrics_with_envelope, 6, 10) == 6, "the telemetry events arrive with their envelope");
    CHECK(locked_get(&rec, &rec.metrics_received) == 6, "and nothing else");
    CHECK_STATUS(cobra_metrics_free(metrics), COBRA_STATUS_OK);

    printf("-- calls after disconnect\n");
    CHECK_STATUS(cobra_client_disconnect(client), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_state(client, &state), COBRA_STATUS_OK);
    CHECK(state == COBRA_STATE_DISCONNECTED, "state %d after disconnect", (int)state);
    CHECK_STATUS(cobra_client_publish(client, channel, "{\"queued\":true}", NULL), COBRA_STATUS_OK);
    size_t pending = 0;
    CHECK_STATUS(cobra_client_pending_count(client, &pending), COBRA_STATUS_OK);
    CHECK(pending >= 1, "the publish is queued while disconnected (%zu)", pending);
    value = NULL;
    cobra_status_t st = cobra_client_read(client, key, 200, &value);
    CHECK(st == COBRA_STATUS_TIMEOUT || st == COBRA_STATUS_CLOSED, "read while disconnected: %s",
          cobra_status_str(st));
    CHECK(value == NULL, "no value");
    CHECK_STATUS(cobra_client_disconnect(client), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_INVALID_HANDLE);
    CHECK_STATUS(cobra_client_connect(client), COBRA_STATUS_INVALID_HANDLE);
    CHECK(rec.saw_wrong_kind == false, "every event had the fields its kind promises");
    recorder_destroy(&rec);
}

/* An aggregate subscription (GROUP BY over windows, docs/streamsql.md "Aggregation"): a fixed sequence with explicit
 * timestamps, the exact rows, live and recomputed from history. The rows are the SDK's JSON text of each row: keys
 * in alphabetical order (the SDK's JSON values do not keep the broker's SELECT order, see the README). */
static void test_aggregate(void) {
    printf("-- aggregate subscription: exact rows, live and resumed from history\n");
    recorder rec;
    cobra_client_t *client = new_recorded_client(&rec);
    char channel[64];
    snprintf(channel, sizeof channel, "%s", unique_channel("c_agg"));
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h "
             "FROM `%s` WHERE device.os_name = 'iOS' GROUP BY device.model "
             "WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES",
             channel);
    CHECK_STATUS(cobra_client_subscribe(client, channel, "agg", sql, NULL, 0, false), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_connect(client), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.subscribed, 1, 10) >= 1, "aggregate subscription accepted");
    /* Minutes apart with a 2-minute grace: the arrival clock cannot close a window during the test. The
     * 12-minute event closes [0, 10 min); the 9-minute one after it is late; the 23-minute one closes [10, 20). */
    static const struct {
        const char *model, *os;
        int fps;
        long ts;
    } events[] = {
        {"iPhone", "iOS", 60, 60000},  {"iPad", "iOS", 30, 120000},     {"iPhone", "iOS", 59, 180000},
        {"Pixel", "Android", 60, 240000}, {"iPhone", "iOS", 10, 540000}, {"iPad", "iOS", 7, 570000},
        {"iPhone", "iOS", 60, 720000}, {"iPhone", "iOS", 60, 540000}, {"iPad", "iOS", 15, 1380000},
    };
    uint64_t id = 0;
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"id\":\"%s\",\"device\":{\"model\":\"%s\",\"os_name\":\"%s\"},\"data\":{\"fps\":%d},\"timestamp\":%ld}",
                 channel, events[i].model, events[i].os, events[i].fps, events[i].ts);
        CHECK_STATUS(cobra_client_publish(client, channel, json, &id), COBRA_STATUS_OK);
    }
    static const char *const expected[3] = {
        "{\"count\":3,\"device.model\":\"iPhone\",\"final\":true,\"fps\":43,\"h\":{\"counts\":[0,2,0,0,1,0],"
        "\"edges\":[60,30,15,10,8],\"shares\":[0,0.6666666666666666,0,0,0.3333333333333333,0]},\"late\":0,"
        "\"skipped\":0,\"window_end\":600000,\"window_start\":0}",
        "{\"count\":2,\"device.model\":\"iPad\",\"final\":true,\"fps\":18.5,\"h\":{\"counts\":[0,0,1,0,0,1],"
        "\"edges\":[60,30,15,10,8],\"shares\":[0,0,0.5,0,0,0.5]},\"late\":0,\"skipped\":0,\"window_end\":600000,"
        "\"window_start\":0}",
        "{\"count\":1,\"device.model\":\"iPhone\",\"final\":true,\"fps\":60,\"h\":{\"counts\":[0,1,0,0,0,0],"
        "\"edges\":[60,30,15,10,8],\"shares\":[0,1,0,0,0,0]},\"late\":1,\"skipped\":0,\"window_end\":1200000,"
        "\"window_start\":600000}",
    };
    CHECK(wait_for(&rec, &rec.agg_rows[0], 3, 10) >= 3, "3 rows arrive");
    /* Resumed from the start of history: the broker recomputes the same rows. */
    CHECK_STATUS(cobra_client_subscribe(client, channel, "agg_again", sql, "0-0", 0, false), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.agg_rows[1], 3, 10) >= 3, "3 rows recomputed from history");
    pthread_mutex_lock(&rec.lock);
    for (int sub = 0; sub < 2; sub++) {
        CHECK(rec.agg_rows[sub] == 3, "subscription %d: %d rows, expected 3", sub, rec.agg_rows[sub]);
        for (int i = 0; i < 3 && i < rec.agg_rows[sub]; i++)
            CHECK(strcmp(rec.agg_row[sub][i], expected[i]) == 0, "subscription %d, row %d:\n  got  %s\n  want %s", sub,
                  i, rec.agg_row[sub][i], expected[i]);
    }
    CHECK(!rec.agg_overflow, "no row beyond the expected ones");
    pthread_mutex_unlock(&rec.lock);

    printf("-- aggregate subscription: an invalid statement is a SUBSCRIPTION_ERROR event\n");
    int errors = locked_get(&rec, &rec.subscription_errors);
    snprintf(sql, sizeof sql, "SELECT model, COUNT(*) FROM `%s` GROUP BY os WINDOW TUMBLING (1 SECOND)", channel);
    CHECK_STATUS(cobra_client_subscribe(client, channel, "agg_bad", sql, NULL, 0, false), COBRA_STATUS_OK);
    CHECK(wait_for(&rec, &rec.subscription_errors, errors + 1, 10) > errors, "invalid_filter error event");
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_OK);
    recorder_destroy(&rec);
}

static void test_free_from_callback(void) {
    printf("-- free a client from inside its own callback\n");
    recorder rec;
    cobra_client_t *client = new_recorded_client(&rec);
    pthread_mutex_lock(&rec.lock);
    rec.self_free_target = client;
    pthread_mutex_unlock(&rec.lock);
    CHECK_STATUS(cobra_client_connect(client), COBRA_STATUS_OK);
    CHECK(wait_flag(&rec, &rec.self_freed, 10), "the callback freed its client");
    pthread_mutex_lock(&rec.lock);
    CHECK(rec.blocking_in_callback_status == COBRA_STATUS_WRONG_THREAD, "blocking read in the callback: %s",
          cobra_status_str(rec.blocking_in_callback_status));
    CHECK(rec.self_free_status == COBRA_STATUS_OK, "free in the callback: %s", cobra_status_str(rec.self_free_status));
    pthread_mutex_unlock(&rec.lock);
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_INVALID_HANDLE); /* double free detected */
    CHECK_STATUS(cobra_client_publish(client, "c", "{}", NULL), COBRA_STATUS_INVALID_HANDLE);
    CHECK(locked_get(&rec, &rec.events_after_self_free) == 0, "no callback after the free");
    recorder_destroy(&rec);
}

/* cobra_live_handles: the leak check bindings use (the Unity package's SafeHandles). */
static void expect_live(size_t configs, size_t clients, size_t metrics, const char *when) {
    cobra_handle_counts_t counts;
    CHECK_STATUS(cobra_live_handles(&counts), COBRA_STATUS_OK);
    CHECK(counts.configs == configs && counts.clients == clients && counts.metrics == metrics,
          "live handles %s: configs=%zu clients=%zu metrics=%zu", when, counts.configs, counts.clients,
          counts.metrics);
}

static void test_live_handles(void) {
    printf("-- cobra_live_handles counts every handle type\n");
    CHECK_STATUS(cobra_live_handles(NULL), COBRA_STATUS_INVALID_ARGUMENT);
    expect_live(0, 0, 0, "before");
    cobra_config_t *config = cobra_config_new();
    expect_live(1, 0, 0, "with a config");
    cobra_config_set_endpoint(config, "ws://127.0.0.1:9");
    cobra_config_set_appkey(config, "a");
    cobra_config_set_role(config, "r");
    cobra_config_set_secret(config, "s");
    cobra_client_t *client = NULL;
    CHECK_STATUS(cobra_client_new(config, NULL, NULL, &client), COBRA_STATUS_OK);
    expect_live(0, 1, 0, "with a client (the config consumed)");
    cobra_metrics_t *metrics = NULL;
    CHECK_STATUS(cobra_metrics_new(client, "m", &metrics), COBRA_STATUS_OK);
    expect_live(0, 1, 1, "with a client and a metrics publisher");
    CHECK_STATUS(cobra_metrics_free(metrics), COBRA_STATUS_OK);
    CHECK_STATUS(cobra_client_free(client), COBRA_STATUS_OK);
    expect_live(0, 0, 0, "after freeing both");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_live_handles();
    printf("libcobra %s\n", cobra_version());
    test_misuse_without_server();
    test_free_while_in_use();
    if (getenv("COBRA_ENDPOINT")) {
        /* First: the engine thread of a client freed from its own callback is detached and ends on its
         * own; running this early lets it finish long before the process exits (valgrind counts the
         * resources of threads still running at exit). */
        test_free_from_callback();
        test_against_server();
        test_aggregate();
    } else {
        printf("SKIP: COBRA_ENDPOINT not set: the end-to-end checks need a server (scripts/test-c.sh starts one)\n");
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
