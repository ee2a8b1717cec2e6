// trainyard-bus: the stateless XSUB/XPUB forwarder of the durable bus (shell.h).
#include "shell.h"

int main(int argc, char** argv) { return trainyard::run_service<trainyard::bus::BusShell>(argc, argv); }
