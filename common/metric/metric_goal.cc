#include "metric/metric_goal.h"

#include <cctype>
#include <string>

namespace trainyard {

MetricGoal default_goal(std::string_view metric) {
  std::string m;
  for (char c : metric) m += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* k : {"acc", "auc", "f1", "precision", "recall", "score", "reward", "bleu", "iou", "map"}) {
    if (m.find(k) != std::string::npos) return MetricGoal::kMax;
  }
  return MetricGoal::kMin;
}

std::optional<MetricGoal> parse_goal(std::string_view goal, std::string_view metric) {
  if (goal == "max") return MetricGoal::kMax;
  if (goal == "min") return MetricGoal::kMin;
  if (goal == "auto" || goal.empty()) return default_goal(metric);
  return std::nullopt;
}

}  // namespace trainyard
