// StreamSQL subscriber in C++ (cobra.hpp): prints "subscribed", then each slow frame the server lets
// through the filter, and exits after [count] messages (0) or 30 s without them (1).
//
//   COBRA_ENDPOINT=... COBRA_APPKEY=... COBRA_ROLE=... COBRA_SECRET=... ./streamsql_subscriber_cpp [count]
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>

#include "cobra.hpp"
#include "common.hpp"

int main(int argc, char **argv) try {
    const unsigned long count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10;
    const std::string fps_id = env_or("COBRA_FPS_ID", "engine_fps_id");

    std::mutex lock;
    std::condition_variable changed;
    unsigned long received = 0;
    bool refused = false;

    cobra::Client client(
        config_from_env(),
        [&](const cobra::Event &e) {
            // The event (and its string_views) is valid only during this call: print or copy.
            std::lock_guard<std::mutex> guard(lock);
            switch (e.kind()) {
                case COBRA_EVENT_SUBSCRIBED: std::cout << "subscribed" << std::endl; break;
                case COBRA_EVENT_SUBSCRIPTION_DATA:
                    for (std::string_view m : e.messages()) std::cout << m << '\n';
                    std::cout.flush();
                    received += e.message_count();
                    break;
                case COBRA_EVENT_SUBSCRIPTION_ERROR:
                    std::cerr << "subscription refused: " << e.error() << ": " << e.reason() << std::endl;
                    refused = true;
                    break;
                default: break;
            }
            changed.notify_all();
        });

    cobra::SubscribeOptions options;
    options.channel = fps_id;
    options.subscription_id = "slow-frames";
    options.filter = "select data.fps, data.frame, device.game from `" + fps_id + "` where data.fps < 30";
    client.subscribe(options);  // sent once the connection is authenticated
    client.connect();

    std::unique_lock<std::mutex> guard(lock);
    changed.wait_for(guard, std::chrono::seconds(30), [&] { return received >= count || refused; });
    const bool ok = received >= count && !refused;
    if (!ok) std::cerr << "received " << received << " of " << count << " messages" << std::endl;
    guard.unlock();  // the client's destructor waits for a running handler, which takes `lock`
    return ok ? 0 : 1;
} catch (const cobra::Error &e) {
    std::fprintf(stderr, "cobra error (status %d): %s\n", static_cast<int>(e.status()), e.what());
    return 1;
}
