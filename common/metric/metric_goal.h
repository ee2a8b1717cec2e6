// Whether a metric is better high or low: the one rule behind `ty compare`,
// the client library's Client::compare and the gateway's compare routes, so
// that the dashboard and the command line rank the same runs first.
#pragma once

#include <optional>
#include <string_view>

namespace trainyard {

enum class MetricGoal { kMin, kMax };

// The goal of a metric nobody gave one for, from its name: names holding
// acc, auc, f1, precision, recall, score, reward, bleu, iou or map (any
// case: "val_accuracy", "mAP") are better high; the rest (loss, error,
// perplexity, wer...) better low.
MetricGoal default_goal(std::string_view metric);

// "min", "max", or "auto" / "" (the default goal of `metric`); nullopt for
// anything else.
std::optional<MetricGoal> parse_goal(std::string_view goal, std::string_view metric);

inline const char* goal_name(MetricGoal g) { return g == MetricGoal::kMax ? "max" : "min"; }

}  // namespace trainyard
