// trainyard-billing: meters the agents' usage ticks into an exact ledger,
// prices them with the rate card, enforces monthly budgets (account.*), and
// answers usage, invoice and estimate requests.
#include "shell.h"
#include "util/run_service.h"

int main(int argc, char** argv) { return trainyard::run_service<trainyard::billing::BillingShell>(argc, argv); }
