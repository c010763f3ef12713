// The HTML report of stategate-bench: one page, readable offline, made from the JSON that
// `stategate-bench --out` writes (schema "stategate-bench/ycsb/1").
//
// The page holds, after the command line and the options:
//   1. a summary table with one row per run (throughput, latency percentiles, SLO
//      attainment, errors, client effort, and the "why nines" fault figures); a skipped run
//      is a row that gives the reason;
//   2. per workload (and loop) of scenario "none", each target's throughput and p99 and
//      their ratios to the baselines present (redis, redis-cluster, memcached, empty);
//   3. per scenario, workload and target, three charts comparing the client modes, one
//      colour per mode: p99 (solid) and p50 (dashed) latency per second on a log scale with
//      the fault window shaded, errors per second, and the tail of the latency distribution.
//
// The charts are inline SVG drawn here; the page has no script and refers to no URL, so it
// can be mailed, archived or opened from a CI artifact as it is. Every string taken from the
// JSON is HTML-escaped, and the page is XHTML-compatible (every element closed).
//
// Thread-safe: a pure function.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace stategate::bench {

// The report page for `results`. Tolerates any JSON: missing or null optional fields show
// as "–", values of the wrong type are ignored, and when there are no runs the page says
// so. Throws nothing.
std::string RenderHtmlReport(const nlohmann::json& results) noexcept;

}  // namespace stategate::bench
