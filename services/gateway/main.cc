// trainyard-gateway: the HTTP face of Trainyard (shell.h).
#include "shell.h"

int main(int argc, char** argv) { return trainyard::run_service<trainyard::gateway::GatewayShell>(argc, argv); }
