// Test of the C++17 wrapper (include/cobra.hpp) against a real cobra server (started by scripts/test-c.sh):
// RAII and moves, exceptions carrying the status, std::function handlers (and a throwing one), publish and
// filtered subscribe, read/write/remove, the metrics publisher, and a subscriber stalled by its own handler
// that catches up from the channel's history once resumed (issue 23).
// Environment as tests/c/test_client.c. Output: one line per failure, then "N passed, N failed".
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

/// The value of the counter `name` (unlabelled) in the server's /metrics, fetched over plain HTTP from the
/// host:port of COBRA_ENDPOINT (ws://HOST:PORT); -1 when it cannot be read.
long long server_counter(const std::string &name) {
    std::string endpoint = env_or("COBRA_ENDPOINT", "ws://127.0.0.1:8765");
    const std::string scheme = "ws://";
    if (endpoint.compare(0, scheme.size(), scheme) != 0) return -1;
    std::string hostport = endpoint.substr(scheme.size());
    hostport = hostport.substr(0, hostport.find('/'));
    const auto colon = hostport.rfind(':');
    if (colon == std::string::npos) return -1;
    const std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found) return -1;
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        if (fd >= 0) close(fd);
        freeaddrinfo(found);
        return -1;
    }
    freeaddrinfo(found);
    timeval five{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: " + hostport + "\r\nConnection: close\r\n\r\n";
    if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
        close(fd);
        return -1;
    }
    std::string body;
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) body.append(buf, static_cast<std::size_t>(n));
    close(fd);
    const std::string key = "\n" + name + " ";
    const auto at = body.find(key);
    if (at == std::string::npos) return -1;
    return std::strtoll(body.c_str() + at + key.size(), nullptr, 10);
}

/// Polls `pred` every 10 ms for up to `seconds`.
template <class Pred>
bool eventually(Pred pred, int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

/// What the stalled subscriber saw; its handler blocks at the first data until `released`.
struct Stalled {
    std::mutex lock;
    std::condition_variable changed;
    bool stalled = false, released = false;
    int authenticated = 0, subscribed = 0, notices = 0;
    std::vector<long> numbers;  // the "n" of every message received, in order
    std::string first_notice;

    void release() {
        {
            std::lock_guard<std::mutex> guard(lock);
            released = true;
        }
        changed.notify_all();
    }
    template <class Pred>
    bool wait(Pred pred, int seconds) {
        std::unique_lock<std::mutex> guard(lock);
        return changed.wait_for(guard, std::chrono::seconds(seconds), [&] { return pred(*this); });
    }
};

/// Releases the stalled handler on every way out of the test, before the client (declared earlier) is
/// freed: freeing joins the engine thread, which would otherwise wait for the handler's timeout.
struct ReleaseOnExit {
    Stalled &s;
    ~ReleaseOnExit() { s.release(); }
};

void test_stalled_subscriber_catches_up() {
    std::printf("-- a stalled subscriber catches up from history: every message once, in order, only data\n");
    // At most 900 x 64 KB = 59 MB: past the server's outbound queue (8 MiB by default) plus the loopback
    // socket buffers at their largest (tcp_rmem 32 MiB + tcp_wmem 4 MiB here), yet within the channel's
    // history (channel_max_length 1000 in scripts/server-for-c.sh).
    const long n = 900;
    const std::string pad(64 * 1024, 'x');
    const long long started_before = server_counter("cobra_catchup_started_total");
    const long long served_before = server_counter("cobra_catchup_messages_total");
    CHECK(started_before >= 0 && served_before >= 0, "the catch-up counters are in /metrics");

    // Without permessage-deflate (on by default): the padding would compress to almost nothing, and the
    // point is bytes the socket does not take.
    auto plain = [] {
        cobra::Config config = make_config();
        config.deflate(false);
        return config;
    };
    Stalled seen;
    cobra::Client subscriber(plain(), [&](const cobra::Event &e) {
        std::unique_lock<std::mutex> guard(seen.lock);
        switch (e.kind()) {
            case COBRA_EVENT_AUTHENTICATED: ++seen.authenticated; break;
            case COBRA_EVENT_SUBSCRIBED: ++seen.subscribed; break;
            case COBRA_EVENT_SUBSCRIPTION_ERROR:
            case COBRA_EVENT_SUBSCRIPTION_INFO:
                if (seen.notices++ == 0) {
                    seen.first_notice = std::string(e.error()) + " " + std::string(e.info_json());
                }
                break;
            case COBRA_EVENT_SUBSCRIPTION_DATA:
                for (auto m : e.messages()) {
                    const auto at = m.find("\"n\":");
                    seen.numbers.push_back(at == std::string_view::npos
                                               ? -1
                                               : std::strtol(std::string(m.substr(at + 4, 24)).c_str(), nullptr, 10));
                }
                if (!seen.stalled) {
                    // Stall the engine thread: nothing is read from the socket until the test says so.
                    seen.stalled = true;
                    seen.changed.notify_all();
                    seen.changed.wait_for(guard, std::chrono::seconds(60), [&] { return seen.released; });
                }
                break;
            default: break;
        }
        guard.unlock();
        seen.changed.notify_all();
    });
    ReleaseOnExit release_on_exit{seen};
    subscriber.connect();
    const std::string channel =
        "cpp_stalled_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    cobra::SubscribeOptions options;
    options.channel = channel;
    subscriber.subscribe(options);
    CHECK(seen.wait([](Stalled &s) { return s.subscribed >= 1; }, 10), "subscribed");

    cobra::Client publisher(plain());
    publisher.connect();
    // In rounds of 50 until the server switched the subscription to history (its queue and the socket
    // buffers are full), then as many again, every round acknowledged while the subscriber is stalled: the
    // publisher is never held back by it. At most `n`: within the channel's history.
    long sent = 0, switched_at = -1;
    bool acked = true;
    while (acked && sent < n && (switched_at < 0 || sent < std::min(n, 2 * switched_at))) {
        for (long end = sent + 50; sent < end; ++sent) {
            publisher.publish(channel, "{\"n\":" + std::to_string(sent) + ",\"pad\":\"" + pad + "\"}");
        }
        acked = eventually([&] { return publisher.pending_count() == 0; }, 30);
        if (sent == 50) CHECK(seen.wait([](Stalled &s) { return s.stalled; }, 10), "stalled at the first message");
        if (switched_at < 0 && server_counter("cobra_catchup_started_total") > started_before) switched_at = sent;
    }
    CHECK(acked, "every publish acknowledged while the subscriber is stalled (" + std::to_string(sent) + " sent)");
    CHECK(switched_at > 0, "the stalled subscription switched to catch-up within " + std::to_string(n) + " messages");
    seen.release();
    const long total = sent;

    CHECK(seen.wait([&](Stalled &s) { return static_cast<long>(s.numbers.size()) >= total; }, 60), "all received");
    {
        std::lock_guard<std::mutex> guard(seen.lock);
        bool in_order = static_cast<long>(seen.numbers.size()) == total;
        for (long i = 0; in_order && i < total; ++i) in_order = seen.numbers[static_cast<std::size_t>(i)] == i;
        CHECK(in_order, "every message exactly once, in order: received " + std::to_string(seen.numbers.size()));
        CHECK(seen.notices == 0, "only data, no subscription error or info: " + seen.first_notice);
        CHECK(seen.authenticated == 1, "never disconnected: authenticated " + std::to_string(seen.authenticated));
    }
    CHECK(server_counter("cobra_catchup_messages_total") > served_before, "messages were served from history");
}

}  // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        test_errors_without_server();
        if (std::getenv("COBRA_ENDPOINT")) {
            test_with_server();
            test_stalled_subscriber_catches_up();
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
