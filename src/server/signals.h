// Process signals for the server binary: SIGHUP reloads namespaces, SIGTERM and SIGINT
// drain and stop.
#pragma once

#include "src/server/gateway.h"

namespace stategate::server {

// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread and every thread it starts later;
// call first thing in main.
void BlockServerSignals();

// Waits for the signals above and acts on them until the gateway has drained.
void ServeUntilTerminated(Gateway& gateway);

}  // namespace stategate::server
