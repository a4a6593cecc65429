// SPDX-License-Identifier: BSD-3-Clause
//
// cobra.hpp: header-only C++17 wrapper over cobra.h (libcobra). A C++ engine needs nothing else.
//
// - RAII: cobra::Config, cobra::Client and cobra::Metrics own their C handle, are movable and not
//   copyable, and free it in their destructor.
// - Errors: every failing call throws cobra::Error (a std::runtime_error carrying the cobra_status_t and
//   the library's message). Destructors never throw. An event the metrics publisher drops on purpose
//   (disabled, blacklisted, rate limited) is not an error: Metrics::push returns the outcome.
// - Strings: std::string_view in, UTF-8. Messages are JSON text (build them with any JSON library).
// - Events: Client takes a std::function<void(const cobra::Event&)>. It runs on the client's engine
//   thread (see cobra.h); the Event and every string_view in it are valid only during the call. An
//   exception thrown by the handler is caught and dropped (it cannot cross into the engine thread). Do
//   not destroy the Client from inside its own handler (the std::function would be destroyed while it
//   runs): signal another thread instead.
//
// Thread safety: as cobra.h. Every method may be called from any thread concurrently, except that
// moving or destroying an object must not race with other calls on it (as for any C++ object).
#ifndef COBRA_HPP
#define COBRA_HPP

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cobra.h"

namespace cobra {

/// A failed call: the C status plus the library's message.
class Error : public std::runtime_error {
public:
    Error(cobra_status_t status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    /// The C status code (never COBRA_STATUS_OK).
    cobra_status_t status() const noexcept { return status_; }

private:
    cobra_status_t status_;
};

namespace detail {

inline void check(cobra_status_t status, const char *what) {
    if (status != COBRA_STATUS_OK) {
        const char *message = cobra_last_error_message();
        throw Error(status, std::string(what) + ": " + (message && *message ? message : cobra_status_str(status)));
    }
}

/// A NUL-terminated copy of a string_view, for the C functions that have no `_n` variant.
inline std::string z(std::string_view s) { return std::string(s); }

/// NULL for an empty optional argument, else a NUL-terminated copy kept alive by `storage`.
inline const char *opt(std::string_view s, std::string &storage) {
    if (s.empty()) return nullptr;
    storage.assign(s.data(), s.size());
    return storage.c_str();
}

inline std::string_view view(const char *s) { return s ? std::string_view(s) : std::string_view(); }

inline std::uint64_t millis(std::chrono::milliseconds d) {
    return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}

/// Frees a libcobra handle: the deleter of Owned, so each wrapper's move, destruction and
/// non-copyability come from std::unique_ptr instead of being written out per class.
struct Free {
    void operator()(cobra_config_t *h) const noexcept { cobra_config_free(h); }
    void operator()(cobra_client_t *h) const noexcept { cobra_client_free(h); }
    void operator()(cobra_metrics_t *h) const noexcept { cobra_metrics_free(h); }
};

template <typename T>
using Owned = std::unique_ptr<T, Free>;

/// The handle of a wrapper, or throws when the wrapper (named by `what`) was moved from.
template <typename T>
T *live(const Owned<T> &handle, const char *what) {
    if (!handle) throw Error(COBRA_STATUS_INVALID_HANDLE, std::string(what) + " was moved from");
    return handle.get();
}

}  // namespace detail

using EventKind = cobra_event_kind_t;
using ErrorKind = cobra_error_kind_t;
using State = cobra_client_state_t;

/// A read-only view of one event, valid only during the handler call.
class Event {
public:
    explicit Event(const cobra_event_t &raw) noexcept : raw_(raw) {}

    EventKind kind() const noexcept { return raw_.kind; }
    std::string_view url() const noexcept { return detail::view(raw_.url); }
    std::uint32_t attempt() const noexcept { return raw_.attempt; }
    std::string_view connection_id() const noexcept { return detail::view(raw_.connection_id); }
    std::string_view server_version() const noexcept { return detail::view(raw_.server_version); }
    std::uint16_t close_code() const noexcept { return raw_.close_code; }
    bool closed_by_remote() const noexcept { return raw_.closed_by_remote; }
    std::string_view reason() const noexcept { return detail::view(raw_.reason); }
    ErrorKind error_kind() const noexcept { return raw_.error_kind; }
    std::uint32_t retry_count() const noexcept { return raw_.retry_count; }
    /// The backoff delay; nullopt for an ERROR after which no retry follows.
    std::optional<std::chrono::milliseconds> wait() const noexcept {
        if (raw_.wait_ms < 0) return std::nullopt;
        return std::chrono::milliseconds(raw_.wait_ms);
    }
    std::string_view subscription_id() const noexcept { return detail::view(raw_.subscription_id); }
    /// Empty when the server sent no position.
    std::string_view position() const noexcept { return detail::view(raw_.position); }
    std::size_t message_count() const noexcept { return raw_.message_count; }
    /// The JSON text of message `i` (i < message_count()).
    std::string_view message(std::size_t i) const noexcept {
        return i < raw_.message_count ? std::string_view(raw_.messages[i], raw_.message_lens[i]) : std::string_view();
    }
    std::vector<std::string_view> messages() const {
        std::vector<std::string_view> out;
        out.reserve(raw_.message_count);
        for (std::size_t i = 0; i < raw_.message_count; ++i) out.push_back(message(i));
        return out;
    }
    std::string_view error() const noexcept { return detail::view(raw_.error); }
    std::string_view info_json() const noexcept { return detail::view(raw_.info_json); }
    std::uint64_t publish_id() const noexcept { return raw_.publish_id; }
    std::chrono::microseconds rtt() const noexcept { return std::chrono::microseconds(raw_.rtt_us); }
    /// The underlying C struct.
    const cobra_event_t &raw() const noexcept { return raw_; }

private:
    const cobra_event_t &raw_;
};

/// Client options (see the cobra_config_set_* functions for each default). Setters chain.
class Config {
public:
    Config() : handle_(cobra_config_new()) {
        if (!handle_) detail::check(COBRA_STATUS_INTERNAL, "cobra_config_new");
    }
    Config(std::string_view endpoint, std::string_view appkey, std::string_view role, std::string_view secret)
        : Config() {
        this->endpoint(endpoint).appkey(appkey).role(role).secret(secret);
    }
    Config &endpoint(std::string_view v) {
        detail::check(cobra_config_set_endpoint_n(get(), v.data(), v.size()), "cobra_config_set_endpoint");
        return *this;
    }
    Config &appkey(std::string_view v) {
        detail::check(cobra_config_set_appkey(get(), detail::z(v).c_str()), "cobra_config_set_appkey");
        return *this;
    }
    Config &role(std::string_view v) {
        detail::check(cobra_config_set_role(get(), detail::z(v).c_str()), "cobra_config_set_role");
        return *this;
    }
    Config &secret(std::string_view v) {
        detail::check(cobra_config_set_secret(get(), detail::z(v).c_str()), "cobra_config_set_secret");
        return *this;
    }
    Config &tls_ca_pem(std::string_view pem) {
        detail::check(cobra_config_set_tls_ca_pem(get(), detail::z(pem).c_str()), "cobra_config_set_tls_ca_pem");
        return *this;
    }
    Config &tls_roots(bool webpki_roots, bool native_roots) {
        detail::check(cobra_config_set_tls_roots(get(), webpki_roots, native_roots), "cobra_config_set_tls_roots");
        return *this;
    }
    Config &add_tls_pin(std::string_view pin) {
        detail::check(cobra_config_add_tls_pin(get(), detail::z(pin).c_str()), "cobra_config_add_tls_pin");
        return *this;
    }
    Config &deflate(bool enabled) {
        detail::check(cobra_config_set_deflate(get(), enabled), "cobra_config_set_deflate");
        return *this;
    }
    Config &deflate_options(std::uint8_t client_max_window_bits, std::uint8_t server_max_window_bits,
                            bool client_no_context_takeover, bool server_no_context_takeover) {
        detail::check(cobra_config_set_deflate_options(get(), client_max_window_bits, server_max_window_bits,
                                                       client_no_context_takeover, server_no_context_takeover),
                      "cobra_config_set_deflate_options");
        return *this;
    }
    Config &heartbeat(std::chrono::milliseconds ping_interval, std::chrono::milliseconds pong_timeout) {
        detail::check(cobra_config_set_heartbeat(get(), detail::millis(ping_interval), detail::millis(pong_timeout)),
                      "cobra_config_set_heartbeat");
        return *this;
    }
    Config &backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) {
        detail::check(cobra_config_set_backoff(get(), detail::millis(min), detail::millis(max)),
                      "cobra_config_set_backoff");
        return *this;
    }
    Config &queue_limits(std::uint64_t max_messages, std::uint64_t max_bytes, cobra_overflow_policy_t policy) {
        detail::check(cobra_config_set_queue_limits(get(), max_messages, max_bytes, policy),
                      "cobra_config_set_queue_limits");
        return *this;
    }
    Config &delivery(cobra_delivery_t delivery) {
        detail::check(cobra_config_set_delivery(get(), delivery), "cobra_config_set_delivery");
        return *this;
    }
    Config &spool(std::string_view dir, std::uint64_t max_bytes) {
        detail::check(cobra_config_set_spool(get(), detail::z(dir).c_str(), max_bytes), "cobra_config_set_spool");
        return *this;
    }
    Config &max_message_size(std::uint64_t bytes) {
        detail::check(cobra_config_set_max_message_size(get(), bytes), "cobra_config_set_max_message_size");
        return *this;
    }
    Config &proxy(std::string_view url) {
        detail::check(cobra_config_set_proxy(get(), detail::z(url).c_str()), "cobra_config_set_proxy");
        return *this;
    }
    Config &header(std::string_view name, std::string_view value) {
        detail::check(cobra_config_add_header(get(), detail::z(name).c_str(), detail::z(value).c_str()),
                      "cobra_config_add_header");
        return *this;
    }
    Config &user_agent(std::string_view ua) {
        detail::check(cobra_config_set_user_agent(get(), detail::z(ua).c_str()), "cobra_config_set_user_agent");
        return *this;
    }
    Config &timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds handshake,
                     std::chrono::milliseconds request) {
        detail::check(cobra_config_set_timeouts(get(), detail::millis(connect), detail::millis(handshake),
                                                detail::millis(request)),
                      "cobra_config_set_timeouts");
        return *this;
    }

    /// Gives up ownership of the C handle (for cobra_client_new).
    cobra_config_t *release() noexcept { return handle_.release(); }

private:
    cobra_config_t *get() const { return detail::live(handle_, "cobra::Config"); }
    detail::Owned<cobra_config_t> handle_;
};

/// What to subscribe to; empty strings mean "not set".
struct SubscribeOptions {
    std::string channel;
    /// Defaults to the channel.
    std::string subscription_id{};
    /// StreamSQL, e.g. "select data.fps from `engine_fps_id` where data.fps < 30".
    std::string filter{};
    /// "0-0" = from the oldest kept; empty = only new messages.
    std::string position{};
    /// 0 = server default.
    std::uint32_t batch_size = 0;
    bool fast_forward = false;
};

/// A connection to a cobra server (one engine thread); see cobra_client_new.
class Client {
public:
    using Handler = std::function<void(const Event &)>;

    /// Takes the config (it is left empty, even when this throws).
    explicit Client(Config &&config, Handler handler = {})
        : handler_(handler ? std::make_unique<Handler>(std::move(handler)) : nullptr) {
        cobra_client_t *handle = nullptr;
        detail::check(cobra_client_new(config.release(), handler_ ? &Client::trampoline : nullptr, handler_.get(),
                                       &handle),
                      "cobra_client_new");
        handle_.reset(handle);
    }
    Client(Client &&other) noexcept = default;
    // Not defaulted: the old client must be freed (no callback running or to come) before its handler goes.
    Client &operator=(Client &&other) noexcept {
        handle_ = std::move(other.handle_);
        handler_ = std::move(other.handler_);
        return *this;
    }

    void connect() { detail::check(cobra_client_connect(get()), "cobra_client_connect"); }
    void disconnect() { detail::check(cobra_client_disconnect(get()), "cobra_client_disconnect"); }
    void suspend() { detail::check(cobra_client_suspend(get()), "cobra_client_suspend"); }
    void resume() { detail::check(cobra_client_resume(get()), "cobra_client_resume"); }
    void network_changed() { detail::check(cobra_client_network_changed(get()), "cobra_client_network_changed"); }

    State state() const {
        cobra_client_state_t state = COBRA_STATE_DISCONNECTED;
        detail::check(cobra_client_state(get(), &state), "cobra_client_state");
        return state;
    }
    std::size_t pending_count() const {
        std::size_t n = 0;
        detail::check(cobra_client_pending_count(get(), &n), "cobra_client_pending_count");
        return n;
    }

    /// Queues `message_json` for `channel`; returns the publish id (see COBRA_EVENT_PUBLISHED).
    std::uint64_t publish(std::string_view channel, std::string_view message_json) {
        std::uint64_t id = 0;
        detail::check(cobra_client_publish_n(get(), channel.data(), channel.size(), message_json.data(),
                                             message_json.size(), &id),
                      "cobra_client_publish");
        return id;
    }
    /// Publishes one message to several channels.
    std::uint64_t publish(const std::vector<std::string> &channels, std::string_view message_json) {
        std::vector<const char *> ptrs;
        ptrs.reserve(channels.size());
        for (const auto &c : channels) ptrs.push_back(c.c_str());
        std::uint64_t id = 0;
        detail::check(cobra_client_publish_channels(get(), ptrs.data(), ptrs.size(), detail::z(message_json).c_str(),
                                                    &id),
                      "cobra_client_publish_channels");
        return id;
    }

    void subscribe(const SubscribeOptions &o) {
        std::string id, filter, position;
        detail::check(cobra_client_subscribe(get(), o.channel.c_str(), detail::opt(o.subscription_id, id),
                                             detail::opt(o.filter, filter), detail::opt(o.position, position),
                                             o.batch_size, o.fast_forward),
                      "cobra_client_subscribe");
    }
    void unsubscribe(std::string_view subscription_id) {
        detail::check(cobra_client_unsubscribe(get(), detail::z(subscription_id).c_str()), "cobra_client_unsubscribe");
    }

    /// The JSON value stored on `channel`, or nullopt when none. Blocks at most `timeout`.
    std::optional<std::string> read(std::string_view channel, std::chrono::milliseconds timeout) {
        char *json = nullptr;
        detail::check(cobra_client_read(get(), detail::z(channel).c_str(), detail::millis(timeout), &json),
                      "cobra_client_read");
        if (!json) return std::nullopt;
        std::string out(json);
        cobra_string_free(json);
        return out;
    }
    void write(std::string_view channel, std::string_view value_json, std::chrono::milliseconds timeout) {
        detail::check(cobra_client_write_n(get(), detail::z(channel).c_str(), value_json.data(), value_json.size(),
                                           detail::millis(timeout)),
                      "cobra_client_write");
    }
    /// Deletes the value of `channel` (`delete` is a C++ keyword).
    void remove(std::string_view channel, std::chrono::milliseconds timeout) {
        detail::check(cobra_client_delete(get(), detail::z(channel).c_str(), detail::millis(timeout)),
                      "cobra_client_delete");
    }

    /// Any request (e.g. "admin/get_connections"); returns the JSON body of its `/ok` answer.
    std::string request(std::string_view action, std::string_view body_json, std::chrono::milliseconds timeout) {
        char *json = nullptr;
        detail::check(cobra_client_request(get(), detail::z(action).c_str(), detail::z(body_json).c_str(),
                                           detail::millis(timeout), &json),
                      "cobra_client_request");
        std::string out(json ? json : "");
        cobra_string_free(json);
        return out;
    }

    /// The C handle, still owned by this object.
    cobra_client_t *handle() const noexcept { return handle_.get(); }

private:
    static void trampoline(const cobra_event_t *event, void *user_data) noexcept {
        try {
            (*static_cast<Handler *>(user_data))(Event(*event));
        } catch (...) {
            // Nowhere to report it: the engine thread cannot take an exception. Handlers should not throw.
        }
    }
    cobra_client_t *get() const { return detail::live(handle_, "cobra::Client"); }

    std::unique_ptr<Handler> handler_;  // heap: its address is the callback's user_data and must not move
    // Declared after handler_, so destroyed (the client freed) before it.
    detail::Owned<cobra_client_t> handle_;
};

/// Forwards the SDK's logs to `sink(level, target, message)` for records up to `max_level`. Once per
/// process (throws cobra::Error the second time). The sink runs on whichever thread logged; exceptions it
/// throws are dropped.
inline void set_log_callback(cobra_log_level_t max_level,
                             std::function<void(cobra_log_level_t, std::string_view, std::string_view)> sink) {
    using Sink = std::function<void(cobra_log_level_t, std::string_view, std::string_view)>;
    // Lives for the rest of the process, like the logger it feeds.
    auto *kept = new Sink(std::move(sink));
    auto trampoline = [](cobra_log_level_t level, const char *target, const char *message, void *user_data) noexcept {
        try {
            (*static_cast<Sink *>(user_data))(level, target, message);
        } catch (...) {
        }
    };
    cobra_status_t status = cobra_set_log_callback(max_level, trampoline, kept);
    if (status != COBRA_STATUS_OK) {
        delete kept;
        detail::check(status, "cobra_set_log_callback");
    }
}

/// The telemetry publisher (see cobra_metrics_new). Does not keep its client alive.
class Metrics {
public:
    using PushOutcome = cobra_push_outcome_t;
    using Stats = cobra_metrics_stats_t;

    /// The result of a push: the outcome and, when published, the client's publish id.
    struct Pushed {
        PushOutcome outcome;
        std::uint64_t publish_id;
        bool published() const noexcept { return outcome == COBRA_PUSH_PUBLISHED; }
    };

    Metrics(Client &client, std::string_view channel) {
        cobra_metrics_t *handle = nullptr;
        detail::check(cobra_metrics_new(client.handle(), detail::z(channel).c_str(), &handle), "cobra_metrics_new");
        handle_.reset(handle);
    }

    /// Pushes one event (`data_json` is its `data`, e.g. R"({"fps":30})").
    Pushed push(std::string_view id, std::string_view data_json) {
        Pushed out{COBRA_PUSH_PUBLISHED, 0};
        detail::check(cobra_metrics_push_n(get(), id.data(), id.size(), data_json.data(), data_json.size(),
                                           &out.outcome, &out.publish_id),
                      "cobra_metrics_push");
        return out;
    }
    void set_enabled(bool enabled) { detail::check(cobra_metrics_set_enabled(get(), enabled), "cobra_metrics_set_enabled"); }
    void set_session(std::string_view session) {
        detail::check(cobra_metrics_set_session(get(), detail::z(session).c_str()), "cobra_metrics_set_session");
    }
    std::string session() const {
        char *s = nullptr;
        detail::check(cobra_metrics_session(get(), &s), "cobra_metrics_session");
        std::string out(s);
        cobra_string_free(s);
        return out;
    }
    /// One device attribute; `value_json` is JSON text (R"("iPhone")", "42", "true").
    void set_device_attribute(std::string_view name, std::string_view value_json) {
        detail::check(cobra_metrics_set_device_attribute(get(), detail::z(name).c_str(), detail::z(value_json).c_str()),
                      "cobra_metrics_set_device_attribute");
    }
    /// All device attributes at once, as a JSON object.
    void set_device_attributes(std::string_view object_json) {
        detail::check(cobra_metrics_set_device_attributes(get(), detail::z(object_json).c_str()),
                      "cobra_metrics_set_device_attributes");
    }
    void set_blacklist(const std::vector<std::string> &ids) {
        std::vector<const char *> ptrs;
        for (const auto &id : ids) ptrs.push_back(id.c_str());
        detail::check(cobra_metrics_set_blacklist(get(), ptrs.data(), ptrs.size()), "cobra_metrics_set_blacklist");
    }
    /// For each id, at most one event per `seconds`.
    void set_rate_control(const std::vector<std::pair<std::string, double>> &limits) {
        std::vector<const char *> ids;
        std::vector<double> seconds;
        for (const auto &l : limits) {
            ids.push_back(l.first.c_str());
            seconds.push_back(l.second);
        }
        detail::check(cobra_metrics_set_rate_control(get(), ids.data(), seconds.data(), ids.size()),
                      "cobra_metrics_set_rate_control");
    }
    Stats stats() const {
        Stats s{};
        detail::check(cobra_metrics_stats(get(), &s), "cobra_metrics_stats");
        return s;
    }

private:
    cobra_metrics_t *get() const { return detail::live(handle_, "cobra::Metrics"); }
    detail::Owned<cobra_metrics_t> handle_;
};

}  // namespace cobra

#endif  // COBRA_HPP
