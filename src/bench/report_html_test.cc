#include "src/bench/report_html.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace stategate::bench {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr double kOnset = 5.0;
constexpr double kEnd = 12.3;

// One run of 20 s at 500 op/s. Under the "killed-replica" fault, "naive" waits for its 1 s
// timeout on every call to the dead replica and fails them, while "full" hedges around it.
json Run(const std::string& target, const std::string& mode, const std::string& scenario) {
  const bool faulted = scenario != "none";
  const bool naive = mode == "naive";
  const double scale = target == "stategate-rocksdb" ? 1.3 : 1.0;
  json series = json::array();
  for (int t = 0; t < 20; ++t) {
    const bool in_fault = faulted && t >= kOnset && t < kEnd;
    const int errors = in_fault && naive ? 60 : 0;
    // Some wobble, and "full" a little faster, so that the lines of the sample stay apart.
    const double wobble = 1 + 0.1 * ((t * 7) % 5);
    double p99 = (naive ? 4000 : 3300) * scale * wobble;
    if (in_fault) p99 = naive ? 1'000'000 : (t == 5 ? 30'000 : 6000);
    series.push_back({{"t", t},
                      {"ops", 500},
                      {"errors", errors},
                      {"p50_us", (in_fault && naive ? 1100
                                  : naive           ? 800
                                                    : 700) *
                                     scale * wobble},
                      {"p99_us", p99},
                      {"slo_attainment", in_fault && naive ? 0.8 : 1.0}});
  }
  // A gap: no operation finished in second 15 of the naive rocksdb run.
  if (naive && target == "stategate-rocksdb") series[15]["p99_us"] = nullptr;
  const double max_us = faulted && naive ? 1'000'000 : 120'000;
  json cdf = json::array();
  for (const auto& [q, us] : std::vector<std::pair<double, double>>{{0.0, 90},
                                                                    {0.1, 300},
                                                                    {0.5, 800 * scale},
                                                                    {0.9, 1500 * scale},
                                                                    {0.99, 4000 * scale},
                                                                    {0.999, 9000 * scale},
                                                                    {1.0, max_us}}) {
    const double mode_us = naive || q >= 1 ? us : 0.85 * us;
    cdf.push_back({{"q", q}, {"us", faulted && naive && q >= 0.9 ? max_us : mode_us}});
  }
  json errors = json::object();
  if (faulted && naive) errors["UNAVAILABLE"] = 438;
  return {{"target", target},
          {"mode", mode},
          {"scenario", scenario},
          {"workload", "a"},
          {"loop", "open"},
          {"rate", 500},
          {"threads", 0},
          {"duration_s", 20.0},
          {"ops", 10000},
          {"ok", faulted && naive ? 9562 : 10000},
          {"not_found", 0},
          {"errors", errors},
          {"throughput", faulted && naive ? 478.1 : 499.5},
          {"p50_us", 800 * scale},
          {"p99_us", faulted && naive ? 1'000'000 : 4000 * scale},
          {"p999_us", 9000 * scale},
          {"max_us", max_us},
          {"slo_target_us", 10000},
          {"slo_attainment", faulted && naive ? 0.9562 : 0.9995},
          {"attempts_per_op", naive ? 1.0 : 1.02},
          {"hedges", naive ? 0 : 12},
          {"retries", naive ? 0 : 3},
          {"bytes_sent", 123456},
          {"fault", faulted ? json{{"onset_s", kOnset}, {"end_s", kEnd}} : json(nullptr)},
          {"series", series},
          {"cdf", cdf},
          {"why_nines",
           {{"blast_radius", faulted && naive ? 0.0438 : 0.0},
            {"recover_from_onset_s", faulted && !naive ? json(0.0) : json(nullptr)},
            {"recover_from_end_s", faulted ? json(naive ? 1.0 : 0.0) : json(nullptr)},
            {"longest_stall_us", max_us}}}};
}

// Two scenarios × two modes × two stategate targets, a direct redis run to compare with, and
// a skipped memcached run.
json Fixture() {
  json runs = json::array();
  for (const char* scenario : {"none", "killed-replica"}) {
    for (const char* target : {"stategate-redis", "stategate-rocksdb"}) {
      for (const char* mode : {"naive", "full"}) runs.push_back(Run(target, mode, scenario));
    }
  }
  json redis = Run("redis", "direct", "none");
  redis["throughput"] = 500.0;
  redis["p99_us"] = 2000;
  runs.push_back(redis);
  runs.push_back({{"target", "memcached"},
                  {"mode", "direct"},
                  {"scenario", "none"},
                  {"workload", "e"},
                  {"loop", "open"},
                  {"skipped", "memcached cannot scan"}});
  return {{"schema", "stategate-bench/ycsb/1"},
          {"command", "stategate-bench --workload a --scenarios none,killed-replica"},
          {"started_at", "2026-11-27T15:00:00Z"},
          {"options", {{"rate", 500}, {"duration", "20s"}, {"targets", {"redis", "stategate"}}}},
          {"runs", runs}};
}

size_t Count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t i = haystack.find(needle); i != std::string_view::npos;
       i = haystack.find(needle, i + needle.size())) {
    ++n;
  }
  return n;
}

// The first reason the page is not well-formed XML-style markup (each element closed, in
// order; no stray '<' or '>' in text), or "" when it is. The page is written XHTML-compatible
// so that this simple check covers the SVG as well.
std::string WellFormedProblem(std::string_view html) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < html.size()) {
    const size_t lt = html.find('<', i);
    const std::string_view text = html.substr(i, lt == std::string_view::npos ? lt : lt - i);
    if (text.find('>') != std::string_view::npos) return "stray '>' in text";
    if (lt == std::string_view::npos) break;
    const size_t gt = html.find('>', lt);
    if (gt == std::string_view::npos) return "unterminated tag";
    const std::string_view tag = html.substr(lt + 1, gt - lt - 1);
    if (tag.find('<') != std::string_view::npos) return "'<' inside a tag";
    i = gt + 1;
    if (tag.starts_with('!')) continue;  // <!DOCTYPE html>
    if (tag.starts_with('/')) {
      if (open.empty() || open.back() != tag.substr(1)) {
        return "</" + std::string(tag.substr(1)) + "> closes " +
               (open.empty() ? "nothing" : "<" + open.back() + ">");
      }
      open.pop_back();
    } else if (!tag.ends_with('/')) {
      open.emplace_back(tag.substr(0, tag.find_first_of(" \n")));
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> not closed";
}

TEST(ReportHtmlTest, IsOneWellFormedPage) {
  const std::string page = RenderHtmlReport(Fixture());
  EXPECT_THAT(page, StartsWith("<!DOCTYPE html>"));
  EXPECT_EQ(WellFormedProblem(page), "");
  EXPECT_EQ(Count(page, "<html"), 1);
  EXPECT_THAT(page, HasSubstr("stategate-bench --workload a --scenarios none,killed-replica"));
  EXPECT_THAT(page, HasSubstr("2026-11-27T15:00:00Z"));
  EXPECT_THAT(page, HasSubstr("[&quot;redis&quot;,&quot;stategate&quot;]"));  // options
}

TEST(ReportHtmlTest, NeedsNothingFromTheNetwork) {
  const std::string page = RenderHtmlReport(Fixture());
  EXPECT_THAT(page, Not(HasSubstr("http://")));
  EXPECT_THAT(page, Not(HasSubstr("https://")));
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, Not(HasSubstr("src=")));
  EXPECT_THAT(page, Not(HasSubstr("url(")));
}

TEST(ReportHtmlTest, DrawsThreeChartsPerTargetAndScenario) {
  const std::string page = RenderHtmlReport(Fixture());
  // none: stategate-redis, stategate-rocksdb, redis; killed-replica: the two stategates.
  // The skipped memcached run has no charts.
  EXPECT_EQ(Count(page, "<svg"), 5 * 3);
  EXPECT_EQ(Count(page, ">Latency per second"), 5);
  EXPECT_EQ(Count(page, ">Errors per second"), 5);
  EXPECT_EQ(Count(page, ">Latency distribution, tail"), 5);
  // Both modes in a legend and in their own colours.
  EXPECT_THAT(page, HasSubstr("</span>naive</span>"));
  EXPECT_THAT(page, HasSubstr("</span>full</span>"));
  EXPECT_THAT(page, HasSubstr("stroke=\"#4e79a7\""));
  EXPECT_THAT(page, HasSubstr("stroke=\"#e15759\""));
  EXPECT_THAT(page, HasSubstr("stroke-dasharray=\"5 3\""));  // p50
}

TEST(ReportHtmlTest, ShadesTheFaultWindowOnlyWhereThereWasAFault) {
  const std::string page = RenderHtmlReport(Fixture());
  const size_t faulted = page.find("<h3>Scenario killed-replica</h3>");
  ASSERT_NE(faulted, std::string::npos);
  EXPECT_EQ(Count(page.substr(0, faulted), "class=\"fault\""), 0);
  // Two targets, each a latency and an errors chart; the modes share one window.
  EXPECT_EQ(Count(page.substr(faulted), "<rect class=\"fault\""), 2 * 2);
  EXPECT_THAT(page.substr(faulted), HasSubstr(">fault</text>"));
  EXPECT_THAT(page.substr(faulted), HasSubstr("from 5.0 s to 12.3 s"));
}

TEST(ReportHtmlTest, SummaryHasTheNumbers) {
  const std::string page = RenderHtmlReport(Fixture());
  EXPECT_THAT(page, HasSubstr("<td>499.5</td>"));    // throughput
  EXPECT_THAT(page, HasSubstr("<td>4.00</td>"));     // p99 4000 us in ms
  EXPECT_THAT(page, HasSubstr("<td>1000</td>"));     // p99 under the fault, 1 s
  EXPECT_THAT(page, HasSubstr("<td>95.62%</td>"));   // SLO attainment
  EXPECT_THAT(page, HasSubstr("<td>99.950%</td>"));  // three nines and more
  EXPECT_THAT(page, HasSubstr("438 <span class=\"small\">(UNAVAILABLE 438)</span>"));
  EXPECT_THAT(page, HasSubstr("<td>4.38%</td>"));  // blast radius
  // The naive run never recovered while the fault lasted.
  EXPECT_THAT(page, HasSubstr("<td>never</td><td>1.0</td>"));
  EXPECT_THAT(page, HasSubstr("skipped: memcached cannot scan"));
}

TEST(ReportHtmlTest, ComparesTargetsWithTheBaselines) {
  const std::string page = RenderHtmlReport(Fixture());
  EXPECT_THAT(page, HasSubstr("<th>throughput × of redis</th><th>p99 × of redis</th>"));
  // stategate-redis: 499.5 op/s and 4 ms against redis's 500 op/s and 2 ms.
  EXPECT_THAT(page, HasSubstr("<td>499.5</td><td>4.00</td><td>1.00×</td><td>2.00×</td>"));
}

TEST(ReportHtmlTest, EscapesTextFromTheResults) {
  json doc = Fixture();
  doc["command"] = "stategate-bench --ns 'a&b' \"<x>\"";
  doc["options"]["<key>"] = "<value>";
  doc["runs"][0]["target"] = "<script>alert(1)</script>";
  doc["runs"][0]["errors"] = {{"<code>", 1}};
  const std::string page = RenderHtmlReport(doc);
  EXPECT_THAT(page, Not(HasSubstr("<script>")));
  EXPECT_THAT(page, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(page, HasSubstr("stategate-bench --ns &#39;a&amp;b&#39; &quot;&lt;x&gt;&quot;"));
  EXPECT_THAT(page, HasSubstr("&lt;key&gt;"));
  EXPECT_THAT(page, HasSubstr("&lt;value&gt;"));
  EXPECT_THAT(page, HasSubstr("&lt;code&gt; 1"));
  EXPECT_EQ(WellFormedProblem(page), "");
}

TEST(ReportHtmlTest, SaysSoWhenThereAreNoRuns) {
  for (const json& doc :
       {json(nullptr), json::object(), json::array(), json("runs"), json{{"runs", json::array()}},
        json{{"runs", 5}}, json{{"runs", {1, "x", nullptr}}, {"options", "not an object"}}}) {
    SCOPED_TRACE(doc.dump());
    const std::string page = RenderHtmlReport(doc);
    EXPECT_THAT(page, StartsWith("<!DOCTYPE html>"));
    EXPECT_THAT(page, HasSubstr("This report has no runs."));
    EXPECT_EQ(WellFormedProblem(page), "");
  }
}

TEST(ReportHtmlTest, ToleratesOddRuns) {
  json doc = Fixture();
  doc["runs"].push_back(json::object());  // nothing at all
  doc["runs"].push_back({{"target", 7},
                         {"mode", nullptr},
                         {"scenario", "killed-replica"},
                         {"throughput", "fast"},
                         {"errors", "many"},
                         {"fault", {{"onset_s", 3}, {"end_s", nullptr}}},
                         {"series", {1, {{"t", "x"}}, {{"t", 1}, {"p99_us", -5}}, {{"t", 2}}}},
                         {"cdf", {{{"q", 2}, {"us", 1}}, {{"q", 0.5}}, nullptr}},
                         {"why_nines", "?"}});
  doc["runs"].push_back({{"scenario", "overload"},
                         {"series", {{{"t", 0}, {"p99_us", 0}, {"p50_us", 1e300}}}},
                         {"cdf", {{{"q", 0.9999999}, {"us", 5}}, {{"q", 1}, {"us", 5}}}}});
  const std::string page = RenderHtmlReport(doc);
  EXPECT_THAT(page, StartsWith("<!DOCTYPE html>"));
  EXPECT_EQ(WellFormedProblem(page), "");
  EXPECT_THAT(page, HasSubstr("<h3>Scenario overload</h3>"));
  EXPECT_THAT(page, Not(HasSubstr("nan")));
  EXPECT_THAT(page, Not(HasSubstr("inf")));
}

// Set STATEGATE_REPORT_SAMPLE=/tmp/report_sample.html to look at the fixture's page in a
// browser.
TEST(ReportHtmlTest, WritesASampleWhenAsked) {
  const char* path = std::getenv("STATEGATE_REPORT_SAMPLE");
  if (path == nullptr) GTEST_SKIP() << "STATEGATE_REPORT_SAMPLE not set";
  std::ofstream(path) << RenderHtmlReport(Fixture());
}

}  // namespace
}  // namespace stategate::bench
