#include "src/bench/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace stategate::bench {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------
// Reading the JSON without ever throwing: a field of the wrong type reads as absent.

const json& Field(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  const auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::optional<double> Num(const json& obj, const char* key) {
  const json& v = Field(obj, key);
  if (!v.is_number()) return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::string Str(const json& obj, const char* key) {
  const json& v = Field(obj, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return "";
}

// JSON text of any value; invalid UTF-8 is replaced rather than thrown on.
std::string Dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// An error count: a number, or an object of counts per status code.
double ErrorCount(const json& v) {
  if (v.is_number()) return std::isfinite(v.get<double>()) ? v.get<double>() : 0;
  double sum = 0;
  if (v.is_object()) {
    for (const auto& [code, n] : v.items()) sum += ErrorCount(n);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------
// Text.

std::string Escape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

constexpr absl::string_view kMissing = "–";

std::string Fixed(std::optional<double> v, int precision) {
  return v ? absl::StrFormat("%.*f", precision, *v) : std::string(kMissing);
}

// Microseconds as milliseconds, with about three significant digits.
std::string Ms(std::optional<double> us) {
  if (!us) return std::string(kMissing);
  const double ms = *us / 1000;
  const double mag = std::abs(ms);
  return absl::StrFormat("%.*f", mag >= 100 ? 0 : mag >= 10 ? 1 : mag >= 1 ? 2 : 3, ms);
}

// A fraction as a percentage; above 99.9% with one more digit so that the nines show.
std::string Percent(std::optional<double> f) {
  if (!f) return std::string(kMissing);
  return absl::StrFormat("%.*f%%", *f >= 0.999 && *f < 1 ? 3 : 2, *f * 100);
}

// ---------------------------------------------------------------------------------------
// The runs, as the page groups them.

struct Run {
  const json* doc;
  std::string target, mode, scenario, workload, loop;
  bool skipped;
};

// Distinct values in order of first appearance: the benchmark writes its runs in the order
// it was asked for them, and the page keeps that order.
std::vector<std::string> Distinct(const std::vector<const Run*>& runs, std::string Run::*field) {
  std::vector<std::string> out;
  for (const Run* r : runs) {
    if (std::find(out.begin(), out.end(), r->*field) == out.end()) out.push_back(r->*field);
  }
  return out;
}

std::vector<const Run*> Where(const std::vector<const Run*>& runs, std::string Run::*field,
                              const std::string& value) {
  std::vector<const Run*> out;
  for (const Run* r : runs) {
    if (r->*field == value) out.push_back(r);
  }
  return out;
}

// Tableau 10: distinct in hue and lightness, so modes stay apart on screen and in print.
constexpr const char* kPalette[] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1",
                                    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};

// One colour per mode across the whole page, so that "full" is the same colour everywhere.
struct Colors {
  std::vector<std::string> modes;
  size_t Index(const std::string& mode) const {
    return static_cast<size_t>(std::find(modes.begin(), modes.end(), mode) - modes.begin());
  }
  const char* For(const std::string& mode) const {
    return kPalette[Index(mode) % std::size(kPalette)];
  }
};

// ---------------------------------------------------------------------------------------
// Chart geometry shared by every chart: a fixed-size SVG, a plot area inside margins that
// leave room for tick labels and axis titles, and one scale per axis.

constexpr double kWidth = 430;
constexpr double kHeight = 260;
constexpr double kLeft = 62;
constexpr double kRight = 22;
constexpr double kTop = 30;
constexpr double kBottom = 44;

// A step of 1, 2 or 5 times a power of ten, at least `raw`.
double NiceStep(double raw) {
  if (!(raw > 0)) return 1;
  const double p = std::pow(10, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

struct Scale {
  double lo = 0;
  double hi = 1;
  bool log = false;
  double step = 1;  // between linear ticks

  // Where v falls: 0 at lo, 1 at hi; clamped, so that an outlier sits on the plot's edge
  // instead of being drawn over the labels.
  double Fraction(double v) const {
    double f =
        log ? (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
            : (v - lo) / (hi - lo);
    return std::clamp(f, 0.0, 1.0);
  }

  // A tick per decade on a log scale; about five on a linear one.
  std::vector<double> Ticks() const {
    std::vector<double> out;
    if (log) {
      for (double v = lo; v <= hi * 1.001; v *= 10) out.push_back(v);
    } else {
      for (int i = 0; lo + i * step <= hi + step * 1e-6; ++i) out.push_back(lo + i * step);
    }
    return out;
  }
};

// From 0 to a round number at or above max; ticks no closer than min_step.
Scale LinearScale(double max, double min_step) {
  Scale s;
  s.step = std::max(NiceStep(max / 5), min_step);
  s.hi = std::max(std::ceil(max / s.step), 1.0) * s.step;
  return s;
}

// Whole decades around [min, max], at most seven of them so that one tiny value does not
// flatten everything else.
Scale LogScale(double min, double max) {
  Scale s;
  s.log = true;
  if (!(min > 0) || !(max >= min)) min = max = 1;
  // A little room at either end, so that a line at 1.04 ms is not drawn on the frame.
  s.hi = std::pow(10, std::ceil(std::log10(max) + 0.03));
  s.lo = std::max(std::pow(10, std::floor(std::log10(min) - 0.1)), s.hi / 1e7);
  if (s.hi <= s.lo) s.hi = s.lo * 10;
  return s;
}

struct Tick {
  double value;
  std::string label;
};

std::vector<Tick> Labelled(const Scale& s) {
  std::vector<Tick> out;
  for (const double v : s.Ticks()) {
    // "%g" writes 1e+06 from a million on; a power of ten is read best as 1e6.
    const bool far = s.log && (v >= 1e5 || v < 1e-3);
    out.push_back({v, far ? absl::StrFormat("1e%.0f", std::log10(v)) : absl::StrFormat("%g", v)});
  }
  return out;
}

struct Plot {
  Scale x, y;
  double X(double v) const { return kLeft + x.Fraction(v) * (kWidth - kLeft - kRight); }
  double Y(double v) const {
    return kHeight - kBottom - y.Fraction(v) * (kHeight - kTop - kBottom);
  }
};

std::string Coord(double v) { return absl::StrFormat("%.1f", v); }

// The opening of a chart: title, grid, ticks, tick labels and axis titles. The caller adds
// its marks and closes the svg element.
std::string OpenChart(const Plot& p, absl::string_view title, const std::vector<Tick>& xticks,
                      const std::vector<Tick>& yticks, absl::string_view xlabel,
                      absl::string_view ylabel) {
  std::string s = absl::StrFormat(
      "<svg class=\"chart\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" role=\"img\" "
      "aria-label=\"%s\">\n<text class=\"ct\" x=\"%g\" y=\"18\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, Escape(title), kLeft, Escape(title));
  const double top = kTop;
  const double bottom = kHeight - kBottom;
  const double left = kLeft;
  const double right = kWidth - kRight;
  for (const Tick& t : xticks) {
    const std::string x = Coord(p.X(t.value));
    absl::StrAppend(&s, "<line class=\"grid\" x1=\"", x, "\" y1=\"", Coord(top), "\" x2=\"", x,
                    "\" y2=\"", Coord(bottom + 4), "\"/>",  //
                    "<text class=\"tl\" text-anchor=\"middle\" x=\"", x, "\" y=\"",
                    Coord(bottom + 16), "\">", Escape(t.label), "</text>\n");
  }
  for (const Tick& t : yticks) {
    const std::string y = Coord(p.Y(t.value));
    absl::StrAppend(&s, "<line class=\"grid\" x1=\"", Coord(left - 4), "\" y1=\"", y, "\" x2=\"",
                    Coord(right), "\" y2=\"", y, "\"/>",  //
                    "<text class=\"tl\" text-anchor=\"end\" x=\"", Coord(left - 7), "\" y=\"",
                    Coord(p.Y(t.value) + 4), "\">", Escape(t.label), "</text>\n");
  }
  absl::StrAppend(&s, "<rect class=\"frame\" x=\"", Coord(left), "\" y=\"", Coord(top),
                  "\" width=\"", Coord(right - left), "\" height=\"", Coord(bottom - top),
                  "\"/>\n");
  absl::StrAppend(&s, "<text class=\"al\" text-anchor=\"middle\" x=\"", Coord((left + right) / 2),
                  "\" y=\"", Coord(kHeight - 8), "\">", Escape(xlabel), "</text>\n");
  const double ly = (top + bottom) / 2;
  absl::StrAppend(&s, "<text class=\"al\" text-anchor=\"middle\" x=\"14\" y=\"", Coord(ly),
                  "\" transform=\"rotate(-90 14 ", Coord(ly), ")\">", Escape(ylabel), "</text>\n");
  return s;
}

// A point of a line; a missing value breaks the line there.
struct Point {
  double x;
  std::optional<double> y;
};

enum class Stroke { kSolid, kDashed, kSteps };

// A line through the points, in the given colour. kSteps holds each value for one unit of x
// (a count per second is a count over the whole second). A point with no neighbour on
// either side is drawn as a dot, or it would not show at all.
std::string Line(const Plot& p, const std::vector<Point>& points, absl::string_view color,
                 Stroke stroke) {
  std::string d;
  std::string dots;
  for (size_t i = 0; i < points.size(); ++i) {
    if (!points[i].y) continue;
    const bool starts = i == 0 || !points[i - 1].y;
    const bool ends = i + 1 == points.size() || !points[i + 1].y;
    const std::string x = Coord(p.X(points[i].x));
    const std::string y = Coord(p.Y(*points[i].y));
    absl::StrAppend(&d, starts ? "M" : "L", x, " ", y, " ");
    if (stroke == Stroke::kSteps) {
      absl::StrAppend(&d, "L", Coord(p.X(points[i].x + 1)), " ", y, " ");
    } else if (starts && ends) {
      absl::StrAppend(&dots, "<circle cx=\"", x, "\" cy=\"", y, "\" r=\"2.5\" fill=\"", color,
                      "\"/>");
    }
  }
  if (d.empty()) return "";
  return absl::StrCat(
      "<path d=\"", d, "\" fill=\"none\" stroke=\"", color, "\" stroke-width=\"1.8\"",
      stroke == Stroke::kDashed ? " stroke-dasharray=\"5 3\" stroke-opacity=\"0.85\"" : "", "/>",
      dots, "\n");
}

// ---------------------------------------------------------------------------------------
// The three charts of a group of runs (one scenario, workload and target; one run per mode).

struct Window {
  double onset, end;
};

// The fault windows of the runs, once each: the modes of a scenario usually share one.
std::vector<Window> FaultWindows(const std::vector<const Run*>& runs, double run_end) {
  std::vector<Window> out;
  for (const Run* r : runs) {
    const json& fault = Field(*r->doc, "fault");
    const std::optional<double> onset = Num(fault, "onset_s");
    if (!onset) continue;
    const Window w{*onset, Num(fault, "end_s").value_or(run_end)};
    const bool seen = std::any_of(out.begin(), out.end(), [&](const Window& o) {
      return std::abs(o.onset - w.onset) < 0.05 && std::abs(o.end - w.end) < 0.05;
    });
    if (!seen) out.push_back(w);
  }
  return out;
}

std::string FaultShading(const Plot& p, const std::vector<Window>& windows) {
  std::string s;
  for (const Window& w : windows) {
    const double x0 = p.X(w.onset);
    const double x1 = std::max(p.X(w.end), x0 + 1);
    absl::StrAppend(&s, "<rect class=\"fault\" x=\"", Coord(x0), "\" y=\"", Coord(kTop),
                    "\" width=\"", Coord(x1 - x0), "\" height=\"", Coord(kHeight - kTop - kBottom),
                    "\"/>");
    absl::StrAppend(&s, "<text class=\"fl\" x=\"", Coord(x0 + 3), "\" y=\"", Coord(kTop + 12),
                    "\">fault</text>\n");
  }
  return s;
}

// The time axis: from 0 to the end of the longest run.
double RunEnd(const std::vector<const Run*>& runs) {
  double end = 1;
  for (const Run* r : runs) {
    end = std::max(end, Num(*r->doc, "duration_s").value_or(0));
    const json& series = Field(*r->doc, "series");
    if (!series.is_array()) continue;
    for (const json& pt : series) end = std::max(end, Num(pt, "t").value_or(0) + 1);
  }
  return end;
}

// One value per second of a run's series, read by `value`, at x = t + x_offset.
template <typename F>
std::vector<Point> SeriesPoints(const Run& r, F value, double x_offset = 0) {
  std::vector<Point> out;
  const json& series = Field(*r.doc, "series");
  if (!series.is_array()) return out;
  for (const json& pt : series) {
    const std::optional<double> t = Num(pt, "t");
    if (t) out.push_back({*t + x_offset, value(pt)});
  }
  return out;
}

std::optional<double> MsField(const json& pt, const char* key) {
  const std::optional<double> us = Num(pt, key);
  if (!us || *us <= 0) return std::nullopt;  // no room for 0 on a log scale
  return *us / 1000;
}

std::string LatencyChart(const std::vector<const Run*>& runs, const Colors& colors) {
  double lo = INFINITY, hi = 0;
  for (const Run* r : runs) {
    for (const char* key : {"p50_us", "p99_us"}) {
      for (const Point& pt : SeriesPoints(*r, [&](const json& j) { return MsField(j, key); })) {
        if (!pt.y) continue;
        lo = std::min(lo, *pt.y);
        hi = std::max(hi, *pt.y);
      }
    }
  }
  const std::optional<double> slo = MsField(*runs.front()->doc, "slo_target_us");
  if (slo && hi > 0) hi = std::max(hi, *slo);
  const double end = RunEnd(runs);
  const Plot p{LinearScale(end, 1), LogScale(lo, hi)};
  std::string s = OpenChart(p, "Latency per second (p99 solid, p50 dashed)", Labelled(p.x),
                            Labelled(p.y), "time since run start (s)", "latency (ms, log scale)");
  s += FaultShading(p, FaultWindows(runs, end));
  if (slo && *slo >= p.y.lo && *slo <= p.y.hi) {
    const std::string y = Coord(p.Y(*slo));
    // Labelled in the legend: a label here would sit on top of some line.
    absl::StrAppend(&s, "<line class=\"slo\" x1=\"", Coord(kLeft), "\" y1=\"", y, "\" x2=\"",
                    Coord(kWidth - kRight), "\" y2=\"", y, "\"/>\n");
  }
  // A second's percentile is drawn at the middle of that second.
  const auto p99 = [](const json& j) { return MsField(j, "p99_us"); };
  const auto p50 = [](const json& j) { return MsField(j, "p50_us"); };
  for (const Run* r : runs) {
    const char* color = colors.For(r->mode);
    s += Line(p, SeriesPoints(*r, p99, 0.5), color, Stroke::kSolid);
    s += Line(p, SeriesPoints(*r, p50, 0.5), color, Stroke::kDashed);
  }
  return s + "</svg>\n";
}

std::string ErrorsChart(const std::vector<const Run*>& runs, const Colors& colors) {
  const auto errors = [](const json& j) -> std::optional<double> {
    return ErrorCount(Field(j, "errors"));
  };
  double hi = 0;
  for (const Run* r : runs) {
    for (const Point& pt : SeriesPoints(*r, errors)) hi = std::max(hi, *pt.y);
  }
  const double end = RunEnd(runs);
  // Headroom, so that the highest step is not drawn on the frame.
  const Plot p{LinearScale(end, 1), LinearScale(hi * 1.1, 1)};
  std::string s = OpenChart(p, "Errors per second", Labelled(p.x), Labelled(p.y),
                            "time since run start (s)", "failed operations / s");
  s += FaultShading(p, FaultWindows(runs, end));
  for (const Run* r : runs) {
    s += Line(p, SeriesPoints(*r, errors), colors.For(r->mode), Stroke::kSteps);
  }
  return s + "</svg>\n";
}

// The tail form of the distribution: y is -log10(1 - q), "nines", so that 90%, 99% and 99.9%
// are equally far apart; the maximum (q = 1) sits one step above the deepest nines.
std::string CdfChart(const std::vector<const Run*>& runs, const Colors& colors) {
  struct Q {
    double q, ms;
  };
  std::vector<std::vector<Q>> per_run;
  double lo = INFINITY, hi = 0, deepest = 1;
  bool has_max = false;
  for (const Run* r : runs) {
    std::vector<Q> qs;
    const json& cdf = Field(*r->doc, "cdf");
    if (cdf.is_array()) {
      for (const json& pt : cdf) {
        const std::optional<double> q = Num(pt, "q");
        const std::optional<double> ms = MsField(pt, "us");
        if (!q || !ms || *q < 0 || *q > 1) continue;
        qs.push_back({*q, *ms});
        lo = std::min(lo, *ms);
        hi = std::max(hi, *ms);
        if (*q >= 1) {
          has_max = true;
        } else {
          deepest = std::max(deepest, std::min(-std::log10(1 - *q), 6.0));
        }
      }
    }
    std::sort(qs.begin(), qs.end(), [](const Q& a, const Q& b) { return a.q < b.q; });
    per_run.push_back(std::move(qs));
  }
  const double top_nines = std::ceil(deepest - 1e-9);
  const double max_row = top_nines + (has_max ? 1 : 0);
  Plot p{LogScale(lo, hi), Scale{}};
  p.y.hi = max_row;
  std::vector<Tick> yticks = {{0, "0%"}};
  // 50% only while there is room for its label above 0%'s.
  if (max_row <= 4) yticks.push_back({std::log10(2), "50%"});
  for (int n = 1; n <= top_nines; ++n) {
    yticks.push_back({static_cast<double>(n),
                      absl::StrFormat("%.*f%%", std::max(0, n - 2), 100 * (1 - std::pow(10, -n)))});
  }
  if (has_max) yticks.push_back({max_row, "max"});
  std::string s = OpenChart(p, "Latency distribution, tail (y: log of 1 − q)", Labelled(p.x),
                            yticks, "latency (ms, log scale)", "percentile");
  for (size_t i = 0; i < runs.size(); ++i) {
    std::vector<Point> points;
    for (const Q& q : per_run[i]) {
      points.push_back({q.ms, q.q >= 1 ? max_row : -std::log10(1 - q.q)});
    }
    s += Line(p, points, colors.For(runs[i]->mode), Stroke::kSolid);
  }
  return s + "</svg>\n";
}

// ---------------------------------------------------------------------------------------
// The sections of the page.

constexpr absl::string_view kStyle = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
h3 { font-size: 16px; margin-top: 24px; } h4 { font-size: 14px; margin: 16px 0 4px; }
pre { background: #f4f4f4; padding: 8px; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 5px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; white-space: normal; vertical-align: bottom; }
td.l, th.l { text-align: left; }
tr.skipped td { color: #888; font-style: italic; }
.scroll { overflow-x: auto; } .small { color: #666; font-size: 11px; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.legend { margin: 2px 0 6px; font-size: 13px; }
.legend span.item { margin-right: 16px; white-space: nowrap; }
.sw { display: inline-block; width: 22px; height: 0; border-top: 3px solid; vertical-align: middle;
      margin-right: 5px; }
.sw.dash { border-top-style: dashed; } .sw.dot { border-top-style: dotted; }
svg.chart { background: #fff; border: 1px solid #e4e4e4; }
svg .ct { font-size: 13px; font-weight: 600; fill: #222; }
svg .tl { font-size: 11px; fill: #555; } svg .al { font-size: 12px; fill: #333; }
svg .grid { stroke: #e8e8e8; stroke-width: 1; } svg .frame { fill: none; stroke: #999; }
svg .fault { fill: #d62728; fill-opacity: 0.12; stroke: #d62728; stroke-opacity: 0.4; }
svg .fl { font-size: 11px; fill: #b22222; } svg .slo { stroke: #888; stroke-dasharray: 2 3; }
)css";

std::string Cell(absl::string_view text, bool left = false) {
  return absl::StrCat(left ? "<td class=\"l\">" : "<td>", text, "</td>");
}

std::string OptionsTable(const json& options) {
  if (!options.is_object() || options.empty()) return "";
  std::string s = "<h2>Options</h2>\n<table>\n";
  for (const auto& [key, value] : options.items()) {
    const std::string text = value.is_string() ? value.get<std::string>() : Dump(value);
    absl::StrAppend(&s, "<tr><th class=\"l\">", Escape(key), "</th>", Cell(Escape(text), true),
                    "</tr>\n");
  }
  return s + "</table>\n";
}

// "never" when a fault happened and the run did not recover from it; "–" without a fault.
std::string RecoverTime(const json& run, const char* key) {
  const std::optional<double> v = Num(Field(run, "why_nines"), key);
  if (v) return absl::StrFormat("%.1f", *v);
  return Num(Field(run, "fault"), "onset_s") ? "never" : std::string(kMissing);
}

std::string Errors(const json& run) {
  const json& errors = Field(run, "errors");
  if (errors.is_null()) return std::string(kMissing);
  std::string s = absl::StrFormat("%.0f", ErrorCount(errors));
  if (errors.is_object() && !errors.empty()) {
    std::string detail;
    for (const auto& [code, n] : errors.items()) {
      absl::StrAppend(&detail, detail.empty() ? "" : ", ", Escape(code), " ",
                      absl::StrFormat("%.0f", ErrorCount(n)));
    }
    absl::StrAppend(&s, " <span class=\"small\">(", detail, ")</span>");
  }
  return s;
}

std::string SummaryTable(const std::vector<const Run*>& runs) {
  std::string s =
      "<h2>1. Summary</h2>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">target</th>"
      "<th class=\"l\">mode</th><th class=\"l\">scenario</th><th class=\"l\">workload</th>"
      "<th class=\"l\">loop</th><th>throughput (ok/s)</th><th>p50 ms</th><th>p99 ms</th>"
      "<th>p99.9 ms</th><th>max ms</th><th>SLO ms</th><th>SLO attained</th>"
      "<th class=\"l\">errors</th><th>attempts/op</th><th>hedges</th><th>retries</th>"
      "<th>blast radius</th><th>recovered after onset (s)</th><th>after end (s)</th>"
      "<th>longest stall ms</th></tr>\n";
  for (const Run* r : runs) {
    const json& d = *r->doc;
    absl::StrAppend(&s, r->skipped ? "<tr class=\"skipped\">" : "<tr>",
                    Cell(Escape(r->target), true), Cell(Escape(r->mode), true),
                    Cell(Escape(r->scenario), true), Cell(Escape(r->workload), true),
                    Cell(Escape(r->loop), true));
    if (r->skipped) {
      absl::StrAppend(&s, "<td class=\"l\" colspan=\"15\">skipped: ", Escape(Str(d, "skipped")),
                      "</td></tr>\n");
      continue;
    }
    const json& why = Field(d, "why_nines");
    absl::StrAppend(&s, Cell(Fixed(Num(d, "throughput"), 1)), Cell(Ms(Num(d, "p50_us"))),
                    Cell(Ms(Num(d, "p99_us"))), Cell(Ms(Num(d, "p999_us"))),
                    Cell(Ms(Num(d, "max_us"))), Cell(Ms(Num(d, "slo_target_us"))),
                    Cell(Percent(Num(d, "slo_attainment"))), Cell(Errors(d), true),
                    Cell(Fixed(Num(d, "attempts_per_op"), 2)), Cell(Fixed(Num(d, "hedges"), 0)),
                    Cell(Fixed(Num(d, "retries"), 0)), Cell(Percent(Num(why, "blast_radius"))),
                    Cell(RecoverTime(d, "recover_from_onset_s")),
                    Cell(RecoverTime(d, "recover_from_end_s")),
                    Cell(Ms(Num(why, "longest_stall_us"))), "</tr>\n");
  }
  return s + "</table></div>\n";
}

bool IsStategate(const std::string& target) { return target.starts_with("stategate"); }

std::string Ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return std::string(kMissing);
  return absl::StrFormat("%.2f×", *a / *b);
}

// Per workload and loop of scenario "none": each run against the baselines (the targets
// that are not stategate), or against every run when there is no baseline.
std::string Comparison(const std::vector<const Run*>& runs) {
  std::string s = "<h2>2. Comparison, scenario \"none\"</h2>\n";
  std::vector<const Run*> none;
  for (const Run* r : Where(runs, &Run::scenario, "none")) {
    if (!r->skipped) none.push_back(r);
  }
  if (none.empty()) return s + "<p>No run of scenario \"none\".</p>\n";
  absl::StrAppend(&s,
                  "<p class=\"small\">Ratios are the row's value over the column's: above 1 "
                  "is more throughput, or a longer p99.</p>\n");
  for (const std::string& workload : Distinct(none, &Run::workload)) {
    const std::vector<const Run*> in_workload = Where(none, &Run::workload, workload);
    for (const std::string& loop : Distinct(in_workload, &Run::loop)) {
      const std::vector<const Run*> rows = Where(in_workload, &Run::loop, loop);
      std::vector<const Run*> refs;
      for (const Run* r : rows) {
        if (!IsStategate(r->target)) refs.push_back(r);
      }
      if (refs.empty()) refs = rows;
      absl::StrAppend(&s, "<h4>workload ", Escape(workload), ", ", Escape(loop),
                      " loop</h4>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">target</th>"
                      "<th class=\"l\">mode</th><th>throughput (ok/s)</th><th>p99 ms</th>");
      for (const Run* ref : refs) {
        const std::string name =
            Escape(IsStategate(ref->target) ? ref->target + " " + ref->mode : ref->target);
        absl::StrAppend(&s, "<th>throughput × of ", name, "</th><th>p99 × of ", name, "</th>");
      }
      s += "</tr>\n";
      for (const Run* r : rows) {
        const json& d = *r->doc;
        absl::StrAppend(&s, "<tr>", Cell(Escape(r->target), true), Cell(Escape(r->mode), true),
                        Cell(Fixed(Num(d, "throughput"), 1)), Cell(Ms(Num(d, "p99_us"))));
        for (const Run* ref : refs) {
          absl::StrAppend(&s, Cell(Ratio(Num(d, "throughput"), Num(*ref->doc, "throughput"))),
                          Cell(Ratio(Num(d, "p99_us"), Num(*ref->doc, "p99_us"))));
        }
        s += "</tr>\n";
      }
      s += "</table></div>\n";
    }
  }
  return s;
}

std::string Legend(const std::vector<const Run*>& runs, const Colors& colors) {
  std::string s = "<div class=\"legend\">";
  for (const Run* r : runs) {
    const char* color = colors.For(r->mode);
    absl::StrAppend(&s, "<span class=\"item\"><span class=\"sw\" style=\"border-color:", color,
                    "\"></span>", Escape(r->mode), "</span>");
  }
  absl::StrAppend(&s,
                  "<span class=\"item small\"><span class=\"sw\" style=\"border-color:#555\">"
                  "</span>p99 <span class=\"sw dash\" style=\"border-color:#555\"></span>p50"
                  "</span>");
  if (const std::optional<double> slo = MsField(*runs.front()->doc, "slo_target_us")) {
    absl::StrAppend(&s,
                    "<span class=\"item small\"><span class=\"sw dot\" "
                    "style=\"border-color:#888\"></span>SLO target ",
                    absl::StrFormat("%g", *slo), " ms</span>");
  }
  return s + "</div>\n";
}

std::string FaultNote(const std::vector<const Run*>& runs) {
  const std::vector<Window> windows = FaultWindows(runs, RunEnd(runs));
  if (windows.empty()) return "";
  std::string s = "<p class=\"small\">Fault (shaded):";
  for (const Window& w : windows) {
    absl::StrAppend(&s, absl::StrFormat(" from %.1f s to %.1f s;", w.onset, w.end));
  }
  s.back() = '.';
  return s + "</p>\n";
}

std::string Scenarios(const std::vector<const Run*>& runs, const Colors& colors) {
  std::string s = "<h2>3. Scenarios: the modes compared</h2>\n";
  for (const std::string& scenario : Distinct(runs, &Run::scenario)) {
    absl::StrAppend(&s, "<h3>Scenario ", Escape(scenario), "</h3>\n");
    const std::vector<const Run*> in_scenario = Where(runs, &Run::scenario, scenario);
    for (const std::string& workload : Distinct(in_scenario, &Run::workload)) {
      const std::vector<const Run*> in_workload = Where(in_scenario, &Run::workload, workload);
      for (const std::string& target : Distinct(in_workload, &Run::target)) {
        std::vector<const Run*> shown;
        std::string skipped;
        for (const Run* r : Where(in_workload, &Run::target, target)) {
          if (r->skipped) {
            absl::StrAppend(&skipped, skipped.empty() ? "" : "; ", Escape(r->mode), ": ",
                            Escape(Str(*r->doc, "skipped")));
          } else {
            shown.push_back(r);
          }
        }
        absl::StrAppend(&s, "<h4>workload ", Escape(workload), " · ", Escape(target), "</h4>\n");
        if (!skipped.empty()) {
          absl::StrAppend(&s, "<p class=\"small\">Skipped: ", skipped, "</p>\n");
        }
        if (shown.empty()) continue;
        std::stable_sort(shown.begin(), shown.end(), [&](const Run* a, const Run* b) {
          return colors.Index(a->mode) < colors.Index(b->mode);
        });
        absl::StrAppend(&s, Legend(shown, colors), FaultNote(shown), "<div class=\"charts\">\n",
                        LatencyChart(shown, colors), ErrorsChart(shown, colors),
                        CdfChart(shown, colors), "</div>\n");
      }
    }
  }
  return s;
}

std::string Render(const json& results) {
  std::vector<Run> runs;
  const json& runs_json = Field(results, "runs");
  if (runs_json.is_array()) {
    for (const json& r : runs_json) {
      if (!r.is_object()) continue;
      const auto or_dash = [](std::string v) { return v.empty() ? std::string(kMissing) : v; };
      const json& skipped = Field(r, "skipped");
      runs.push_back({&r, or_dash(Str(r, "target")), or_dash(Str(r, "mode")),
                      or_dash(Str(r, "scenario")), or_dash(Str(r, "workload")),
                      or_dash(Str(r, "loop")), skipped.is_string() || skipped == true});
    }
  }
  std::vector<const Run*> all;
  for (const Run& r : runs) all.push_back(&r);

  std::string s = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<title>stategate-bench report</title>\n<style>",
      kStyle, "</style>\n</head>\n<body>\n<h1>stategate-bench report</h1>\n");
  absl::StrAppend(&s, "<p class=\"small\">schema ", Escape(Str(results, "schema")),
                  " · started at ", Escape(Str(results, "started_at")), "</p>\n");
  absl::StrAppend(&s, "<h2>Command</h2>\n<pre>", Escape(Str(results, "command")), "</pre>\n");
  s += OptionsTable(Field(results, "options"));
  if (all.empty()) {
    return s + "<h2>No runs</h2>\n<p>This report has no runs.</p>\n</body>\n</html>\n";
  }

  Colors colors;
  colors.modes = Distinct(all, &Run::mode);
  absl::StrAppend(&s, SummaryTable(all), Comparison(all), Scenarios(all, colors),
                  "</body>\n</html>\n");
  return s;
}

}  // namespace

std::string RenderHtmlReport(const nlohmann::json& results) noexcept {
  try {
    return Render(results);
  } catch (const json::exception& e) {
    // Render only reads what it has checked the type of, so this is a bug; a page that says
    // so still beats losing the benchmark's results to a crash.
    return absl::StrCat(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        "<title>stategate-bench report</title>\n</head>\n<body>\n<p>The report could not be "
        "rendered: ",
        Escape(e.what()), "</p>\n</body>\n</html>\n");
  }
}

}  // namespace stategate::bench
