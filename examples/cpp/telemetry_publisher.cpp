// Telemetry publisher in C++ (cobra.hpp): one `engine_fps_id` event per simulated frame through the
// metrics publisher, then wait for the server's acknowledgements.
//
//   COBRA_ENDPOINT=ws://127.0.0.1:8765 COBRA_APPKEY=_pubsub COBRA_ROLE=pubsub COBRA_SECRET=...
//   ./telemetry_publisher_cpp [frames]        (COBRA_FPS_ID renames the event id)
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "cobra.hpp"
#include "common.hpp"

int main(int argc, char **argv) try {
    const unsigned long frames = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 80;
    const std::string fps_id = env_or("COBRA_FPS_ID", "engine_fps_id");

    std::mutex lock;
    std::condition_variable changed;
    unsigned long acked = 0, dropped = 0;

    cobra::Config config = config_from_env();
    // The handler runs on the client's engine thread: keep it short.
    cobra::Client client(std::move(config), [&](const cobra::Event &e) {
        std::lock_guard<std::mutex> guard(lock);
        if (e.kind() == COBRA_EVENT_PUBLISHED) ++acked;
        if (e.kind() == COBRA_EVENT_PUBLISH_DROPPED) ++dropped;
        changed.notify_all();
    });
    client.connect();

    cobra::Metrics metrics(client, "telemetry");
    metrics.set_device_attributes(R"({"game":"demo","os_name":"Linux","model":"desktop","app_version":"1.0"})");

    unsigned long published = 0;
    for (unsigned long frame = 0; frame < frames; ++frame) {
        const std::string data =
            "{\"fps\":" + std::to_string(20 + (frame * 7) % 40) + ",\"frame\":" + std::to_string(frame) + "}";
        if (metrics.push(fps_id, data).published()) ++published;
    }

    std::unique_lock<std::mutex> guard(lock);
    changed.wait_for(guard, std::chrono::seconds(20), [&] { return acked + dropped >= published; });
    std::printf("pushed %lu %s events: %lu acknowledged, %lu dropped\n", published, fps_id.c_str(), acked, dropped);
    return acked == published ? 0 : 1;
    // `metrics`, then `client` are freed here (the handler never runs after the client is gone).
} catch (const cobra::Error &e) {
    std::fprintf(stderr, "cobra error (status %d): %s\n", static_cast<int>(e.status()), e.what());
    return 1;
}
