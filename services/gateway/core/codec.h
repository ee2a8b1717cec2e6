// JSON views of the FlatBuffers answers only the gateway serves (metrics,
// series, comparisons, usage, invoices); jobs, specs and nodes have the one
// JSON form ty prints too (records/record_json.h), and states their one
// spelling (job/job_state.h). Times leave the gateway as milliseconds since
// the Unix epoch ("*_ms"), money as integer micros plus a decimal amount, so
// a browser's doubles lose nothing that matters.
#pragma once

#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "job/job_state.h"
#include "records/record_json.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::gateway {

using Json = nlohmann::json;

using records::JobView;
using records::job_json;
using records::node_json;
using records::ns_to_ms;
using records::spec_json;

Json to_json(const fb::MetricSummaries& m);
Json to_json(const fb::Series& s);
Json to_json(const fb::UsageReport& u);
// Every page of a QueryUsage answer, as one report.
Json to_json(std::span<const fb::UsageReport* const> pages);
Json to_json(const fb::Invoice& inv);

// A comparison, ranked best first (by best_value, ascending unless
// `maximize`); each row gets "rank" (1 = best). Rows without points last.
Json to_json(const fb::Comparison& c, bool maximize);

// Money: micros -> a decimal amount in the currency unit.
double micros_to_amount(int64_t micros);

}  // namespace trainyard::gateway
