/* The talk's FPS table, in C: the broker aggregates the telemetry (StreamSQL GROUP BY over 10-minute windows) and
 * sends one row per device model and window; this program prints each window as the talk's table.
 *
 * It publishes a fixed sequence of fps events with explicit `timestamp`s itself (so its output is exactly
 * examples/c/fps_table.expected, which scripts/run-c-examples.sh diffs), then waits for the 3 rows of the two
 * windows the sequence closes, and prints them. Exit 0 once they arrived, 1 after 30 s without them.
 *
 *   COBRA_ENDPOINT=... COBRA_APPKEY=... COBRA_ROLE=... COBRA_SECRET=... COBRA_FPS_ID=channel ./fps_table
 *
 * The rows are JSON objects (docs/streamsql.md, "Rows"); a real program would use a JSON parser, this one reads the
 * few fields it needs with strstr/strtod to stay dependency-free.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cobra.h"
#include "common.h"

#define ROWS 3        /* what the sequence below closes: 2 models in [0, 10 min), 1 in [10, 20 min) */
#define ROW_BYTES 1024
#define BUCKETS 6     /* HISTOGRAM(data.fps, 60, 30, 15, 10, 8): > 60, (30, 60], ..., <= 8 */

static const char *const bucket_names[BUCKETS] = {"> 60", "60", "30", "15", "10", "<= 8"};

struct state {
    struct shared shared; /* first: see common.h */
    int subscribed;
    int rows;
    char row[ROWS][ROW_BYTES];
};

/* Runs on the client's engine thread, under the lock. The event's strings are valid only during this call: copy
 * them. */
static void record(struct shared *shared, const cobra_event_t *event) {
    struct state *s = (struct state *)shared;
    if (event->kind == COBRA_EVENT_SUBSCRIBED) s->subscribed = 1;
    if (event->kind != COBRA_EVENT_SUBSCRIPTION_DATA) return;
    for (size_t i = 0; i < event->message_count; i++) {
        if (s->rows == ROWS || event->message_lens[i] >= ROW_BYTES) {
            s->shared.failed = 1; /* more rows than the sequence closes, or one far larger than expected */
            continue;
        }
        memcpy(s->row[s->rows++], event->messages[i], event->message_lens[i] + 1);
    }
}

static int subscribed(struct shared *shared) {
    return ((struct state *)shared)->subscribed;
}

static int all_rows(struct shared *shared) {
    return ((struct state *)shared)->rows >= ROWS;
}

/* The text after `"key":` in a row, or NULL. Keys are unique in these rows. */
static const char *field(const char *row, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(row, pattern);
    return p ? p + strlen(pattern) : NULL;
}

static double number(const char *row, const char *key) {
    const char *p = field(row, key);
    return p ? strtod(p, NULL) : -1;
}

/* A JSON string value (no escapes expected in a device model) into out. */
static void string(const char *row, const char *key, char *out, size_t n) {
    const char *p = field(row, key);
    const char *end = p && *p == '"' ? strchr(p + 1, '"') : NULL;
    size_t len = end ? (size_t)(end - p - 1) : 0;
    if (len >= n) len = n - 1;
    memcpy(out, end ? p + 1 : "", len);
    out[len] = '\0';
}

/* The `n` numbers of the JSON array after "key":. */
static void numbers(const char *row, const char *key, double *out, int n) {
    const char *p = field(row, key);
    for (int i = 0; i < n; i++) {
        out[i] = 0;
        if (!p) continue;
        char *end;
        out[i] = strtod(p + 1, &end); /* p is at '[' or ',' */
        p = end;
    }
}

static void clock_text(double ms, char *out, size_t n) {
    long secs = (long)(ms / 1000) % 86400;
    snprintf(out, n, "%02ld:%02ld:%02ld", secs / 3600, secs / 60 % 60, secs % 60);
}

static void rule(int ncols) {
    printf("+-------------+");
    for (int c = 0; c < ncols; c++) printf("----------+");
    printf("\n");
}

/* One window: groups as columns, the histogram's shares and the other aggregates as lines (the talk's layout). */
static void print_window(char rows[][ROW_BYTES], int n) {
    char from[16], to[16];
    clock_text(number(rows[0], "window_start"), from, sizeof from);
    clock_text(number(rows[0], "window_end"), to, sizeof to);
    printf("window %s - %s UTC\n", from, to);
    rule(n);
    printf("| %-11s |", "Frame Rate");
    for (int c = 0; c < n; c++) {
        char model[64];
        string(rows[c], "device.model", model, sizeof model);
        printf(" %-8s |", model);
    }
    printf("\n");
    rule(n);
    printf("| %-11s |", "Samples");
    for (int c = 0; c < n; c++) printf(" %-8.0f |", number(rows[c], "count"));
    printf("\n");
    rule(n);
    for (int b = 0; b < BUCKETS; b++) {
        printf("| %-11s |", bucket_names[b]);
        for (int c = 0; c < n; c++) {
            double shares[BUCKETS];
            numbers(rows[c], "shares", shares, BUCKETS);
            printf(" %5.1f %%  |", shares[b] * 100);
        }
        printf("\n");
        rule(n);
    }
    printf("| %-11s |", "Average FPS");
    for (int c = 0; c < n; c++) printf(" %-8.2f |", number(rows[c], "Average FPS"));
    printf("\n");
    rule(n);
}

int main(void) {
    const char *channel = env_or("COBRA_FPS_ID", "engine_fps_id");
    static struct state s = {SHARED_INIT(record), 0, 0, {{0}}};

    cobra_client_t *client = client_from_env(on_event, &s);
    if (!client) return 1;

    /* The talk's statement, on 10-minute windows so that the arrival clock cannot close one during the run. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT device.model, COUNT(*), HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS 'Frame Rate', "
             "AVG(data.fps) AS 'Average FPS' FROM `%s` WHERE device.os_name = 'iOS' "
             "GROUP BY device.model WINDOW TUMBLING (10 MINUTES) GRACE 2 MINUTES",
             channel);
    if (!subscribe_and_connect(client, channel, "fps-table", sql)) return 1;

    struct timespec deadline = deadline_in(30);
    int ok = wait_until(&s.shared, subscribed, &deadline);

    /* model, os, fps, minute of event time: the 12-minute event closes [0, 10 min), the 23-minute one [10, 20). */
    static const struct {
        const char *model, *os;
        int fps;
        double minute;
    } events[] = {
        {"iPhone", "iOS", 60, 1},   {"iPad", "iOS", 30, 2},   {"iPhone", "iOS", 59, 3},
        {"Pixel", "Android", 60, 4}, {"iPhone", "iOS", 10, 9}, {"iPad", "iOS", 7, 9.5},
        {"iPhone", "iOS", 60, 12},  {"iPad", "iOS", 15, 23},
    };
    for (size_t i = 0; ok && i < sizeof events / sizeof events[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"id\":\"%s\",\"device\":{\"model\":\"%s\",\"os_name\":\"%s\"},\"data\":{\"fps\":%d},"
                 "\"timestamp\":%.0f}",
                 channel, events[i].model, events[i].os, events[i].fps, events[i].minute * 60000);
        uint64_t id;
        ok = cobra_client_publish(client, channel, json, &id) == COBRA_STATUS_OK;
        if (!ok) fprintf(stderr, "publish: %s\n", cobra_last_error_message());
    }
    ok = ok && wait_until(&s.shared, all_rows, &deadline);
    cobra_client_free(client); /* joins the engine thread: no callback runs after this */
    if (!ok) {
        fprintf(stderr, "received %d of %d rows\n", s.rows, ROWS);
        return 1;
    }

    /* Rows of one window come together, groups in first-seen order. */
    for (int first = 0; first < s.rows;) {
        int n = 1;
        while (first + n < s.rows && number(s.row[first + n], "window_start") == number(s.row[first], "window_start"))
            n++;
        if (first > 0) printf("\n");
        print_window(&s.row[first], n);
        first += n;
    }
    return 0;
}
