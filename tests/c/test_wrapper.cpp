// Test of the C++17 wrapper (include/cobra.hpp) against a real cobra server (started by scripts/test-c.sh):
// RAII and moves, exceptions carrying the status, std::function handlers (and a throwing one), publish and
// filtered subscribe, read/write/remove, and the metrics publisher.
// Environment as tests/c/test_client.c. Output: one line per failure, then "N passed, N failed".
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cobra.hpp"

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string &what, int line) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::printf("FAIL test_wrapper.cpp:%d: %s\n", line, what.c_str());
    }
}
#define CHECK(cond, what) check((cond), std::string(#cond) + ": " + (what), __LINE__)

std::string env_or(const char *name, const char *fallback) {
    const char *v = std::getenv(name);
    return v && *v ? v : fallback;
}

cobra::Config make_config() {
    cobra::Config config(env_or("COBRA_ENDPOINT", "ws://127.0.0.1:8765"), env_or("COBRA_APPKEY", "_pubsub"),
                         env_or("COBRA_ROLE", "pubsub"), env_or("COBRA_SECRET", ""));
    config.backoff(std::chrono::milliseconds(50), std::chrono::milliseconds(500));
    return config;
}

/// Events seen by a handler, and a way to wait for them.
struct Seen {
    std::mutex lock;
    std::condition_variable changed;
    int authenticated = 0;
    int subscribed = 0;
    std::vector<std::string> messages;

    template <class Pred>
    bool wait(Pred pred, int seconds = 10) {
        std::unique_lock<std::mutex> guard(lock);
        return changed.wait_for(guard, std::chrono::seconds(seconds), [&] { return pred(*this); });
    }
};

void test_errors_without_server() {
    std::printf("-- exceptions, RAII, moves, log callback\n");
    cobra::set_log_callback(COBRA_LOG_WARN, [](cobra_log_level_t, std::string_view, std::string_view) {});
    try {
        cobra::set_log_callback(COBRA_LOG_WARN, [](cobra_log_level_t, std::string_view, std::string_view) {});
        CHECK(false, "a second logger must throw");
    } catch (const cobra::Error &e) {
        CHECK(e.status() == COBRA_STATUS_INVALID_ARGUMENT, e.what());
    }
    try {
        cobra::Config config;
        config.endpoint("http://not-websocket").appkey("k").role("r");
        cobra::Client client(std::move(config));
        CHECK(false, "a bad endpoint must throw");
    } catch (const cobra::Error &e) {
        CHECK(e.status() == COBRA_STATUS_CONFIG, e.what());
        CHECK(std::string(e.what()).find("endpoint") != std::string::npos, e.what());
    }
    try {
        cobra::Config config;
        config.role(std::string("\xff", 1));
        CHECK(false, "invalid UTF-8 must throw");
    } catch (const cobra::Error &e) {
        CHECK(e.status() == COBRA_STATUS_INVALID_ARGUMENT, e.what());
    }
    cobra::Client client(make_config());
    cobra::Client moved(std::move(client));
    try {
        client.connect();
        CHECK(false, "a moved-from client must throw");
    } catch (const cobra::Error &e) {
        CHECK(e.status() == COBRA_STATUS_INVALID_HANDLE, e.what());
    }
    CHECK(moved.state() == COBRA_STATE_DISCONNECTED, "fresh client is disconnected");
    try {
        moved.publish("chan", "{not json");
        CHECK(false, "bad JSON must throw");
    } catch (const cobra::Error &e) {
        CHECK(e.status() == COBRA_STATUS_INVALID_ARGUMENT, e.what());
    }
    CHECK(moved.publish("chan", R"({"queued":true})") > 0, "publish while offline queues");
    CHECK(moved.pending_count() == 1, "one pending");
}

void test_with_server() {
    std::printf("-- handler, publish, filtered subscribe, read/write/remove, metrics\n");
    Seen seen;
    std::atomic<int> thrown{0};
    cobra::Client client(make_config(), [&](const cobra::Event &e) {
        {
            std::lock_guard<std::mutex> guard(seen.lock);
            switch (e.kind()) {
                case COBRA_EVENT_AUTHENTICATED:
                    ++seen.authenticated;
                    ++thrown;  // counted before the waiter is woken; the throw follows below
                    break;
                case COBRA_EVENT_SUBSCRIBED: ++seen.subscribed; break;
                case COBRA_EVENT_SUBSCRIPTION_DATA:
                    for (auto m : e.messages()) seen.messages.emplace_back(m);
                    break;
                default: break;
            }
        }
        seen.changed.notify_all();
        if (e.kind() == COBRA_EVENT_AUTHENTICATED) {
            throw std::runtime_error("a throwing handler must not take the engine down");
        }
    });
    client.connect();
    CHECK(seen.wait([](Seen &s) { return s.authenticated >= 1; }), "authenticated");
    CHECK(thrown == 1, "the handler ran and threw");

    const std::string channel = "cpp_test_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    cobra::SubscribeOptions options;
    options.channel = channel;
    options.filter = "select data.fps from `" + channel + "` where data.fps < 30";
    client.subscribe(options);
    CHECK(seen.wait([](Seen &s) { return s.subscribed >= 1; }), "subscribed");
    client.publish(channel, R"({"data":{"fps":60}})");
    client.publish(std::vector<std::string>{channel, channel + "_copy"}, R"({"data":{"fps":12}})");
    CHECK(seen.wait([](Seen &s) { return !s.messages.empty(); }), "the filtered message arrives");
    {
        std::lock_guard<std::mutex> guard(seen.lock);
        CHECK(seen.messages.size() == 1 && seen.messages[0] == R"({"data.fps":12})",
              seen.messages.empty() ? "none" : seen.messages[0]);
    }

    const std::string connections = client.request("admin/get_connections", "{}", std::chrono::seconds(5));
    CHECK(connections.find("\"connections\"") != std::string::npos, connections);

    const std::string key = channel + "_kv";
    client.write(key, R"({"level":3})", std::chrono::seconds(5));
    auto value = client.read(key, std::chrono::seconds(5));
    CHECK(value && *value == R"({"level":3})", value ? *value : "nullopt");
    client.remove(key, std::chrono::seconds(5));
    CHECK(!client.read(key, std::chrono::seconds(5)), "removed");

    std::printf("-- metrics publisher\n");
    const std::string fps_id = channel + "_fps";
    cobra::SubscribeOptions fps;
    fps.channel = fps_id;
    fps.subscription_id = "fps";
    fps.filter = "select data.fps, device.game from `" + fps_id + "`";
    client.subscribe(fps);
    CHECK(seen.wait([](Seen &s) { return s.subscribed >= 2; }), "subscribed to the metrics id");
    cobra::Metrics metrics(client, "cpp_metrics");
    metrics.set_device_attribute("game", R"("cpptest")");
    CHECK(metrics.push(fps_id, R"({"fps":24})").published(), "published");
    metrics.set_blacklist({fps_id});
    CHECK(metrics.push(fps_id, R"({"fps":24})").outcome == COBRA_PUSH_BLACKLISTED, "blacklisted");
    metrics.set_blacklist({});
    metrics.set_rate_control({{fps_id, 3600.0}});
    CHECK(metrics.push(fps_id, R"({"fps":25})").outcome == COBRA_PUSH_RATE_LIMITED, "rate limited");
    CHECK(metrics.stats().published == 1 && metrics.stats().blacklisted == 1 && metrics.stats().rate_limited == 1,
          "stats");
    CHECK(seen.wait([](Seen &s) {
        for (auto &m : s.messages)
            if (m == R"({"data.fps":24,"device.game":"cpptest"})") return true;
        return false;
    }),
          "the telemetry event arrives with its device attributes");
    cobra::Metrics moved_metrics(std::move(metrics));
    CHECK(moved_metrics.session().size() == 32, "default session id: 32 hex characters");
}

}  // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        test_errors_without_server();
        if (std::getenv("COBRA_ENDPOINT")) {
            test_with_server();
        } else {
            std::printf("SKIP: COBRA_ENDPOINT not set\n");
        }
    } catch (const cobra::Error &e) {
        ++failed;
        std::printf("FAIL: unexpected cobra::Error (status %d): %s\n", static_cast<int>(e.status()), e.what());
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
