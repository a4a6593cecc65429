// What the C++ examples share: their settings, read from the environment.
#pragma once

#include <cstdlib>
#include <string>

#include "cobra.hpp"

// The environment variable `name`, or `fallback` when it is unset or empty.
inline std::string env_or(const char *name, const char *fallback) {
    const char *v = std::getenv(name);
    return v && *v ? v : fallback;
}

// A client config from COBRA_ENDPOINT (default ws://127.0.0.1:8765), COBRA_APPKEY (_pubsub),
// COBRA_ROLE (pubsub) and COBRA_SECRET.
inline cobra::Config config_from_env() {
    return cobra::Config(env_or("COBRA_ENDPOINT", "ws://127.0.0.1:8765"), env_or("COBRA_APPKEY", "_pubsub"),
                         env_or("COBRA_ROLE", "pubsub"), env_or("COBRA_SECRET", ""));
}
