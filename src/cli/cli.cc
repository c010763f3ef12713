#include "src/cli/cli.h"

#include <cmath>
#include <iostream>
#include <iterator>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace stategate::cli {
namespace {

struct Args {
  KvClientOptions client;
  std::string ns = "default";
  double timeout_seconds = 5;
  std::string id;
  std::string key;
  double ttl_seconds = 0;
};

int Fail(const absl::Status& status, std::ostream& err) {
  err << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
  return status.code() == absl::StatusCode::kNotFound ? kExitNotFound : kExitFailure;
}

std::string FormatSlo(const LatencySlo& slo) {
  return absl::StrCat("target ", absl::FormatDuration(slo.target), " max ",
                      absl::FormatDuration(slo.max));
}

void PrintHandshake(const HandshakeInfo& info, std::ostream& out) {
  out << "config_version: " << info.config_version << "\n"
      << "server_time: "
      << absl::FormatTime(absl::RFC3339_full, info.server_time, absl::UTCTimeZone()) << "\n"
      << "max_clock_skew: " << absl::FormatDuration(info.max_clock_skew) << "\n";
  for (const NamespaceSettings& ns : info.namespaces) {
    out << "namespace " << ns.name << " (" << ns.abstraction << ")\n"
        << "  slo point_read: " << FormatSlo(ns.point_read_slo) << "\n"
        << "  slo range_read: " << FormatSlo(ns.range_read_slo) << "\n"
        << "  slo write: " << FormatSlo(ns.write_slo) << "\n"
        << absl::StrFormat(
               "  client: compression_threshold_bytes=%d chunk_bytes=%d page_size_bytes=%d "
               "hedging=%s near_cache=%s\n",
               ns.compression_threshold_bytes, ns.chunk_bytes, ns.page_size_bytes,
               ns.hedging ? "true" : "false", ns.near_cache)
        << absl::StrFormat(
               "  limits: max_key_bytes=%d max_value_bytes=%d max_items_per_call=%d "
               "max_request_bytes=%d\n",
               ns.max_key_bytes, ns.max_value_bytes, ns.max_items_per_call, ns.max_request_bytes);
  }
}

absl::StatusOr<absl::Duration> Seconds(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a non-negative number of seconds"));
  }
  return absl::Seconds(seconds);
}

}  // namespace

int RunCli(int argc, const char* const* argv, std::istream& in, std::ostream& out,
           std::ostream& err, const ClientFactory& connect) {
  Args args;
  CLI::App app{"Operate on the Key-Value data of a stategate gateway.", "stategate-cli"};
  std::string addresses = args.client.address;
  app.add_option("--addr", addresses,
                 "gateway address HOST:PORT, or several comma-separated (gateways of one fleet: "
                 "calls spread over them and fail over between them)")
      ->capture_default_str();
  app.add_option("-n,--namespace", args.ns, "namespace")->capture_default_str();
  app.add_option("--timeout", args.timeout_seconds, "per-call timeout in seconds")
      ->capture_default_str();
  app.require_subcommand(1);

  CLI::App* put = app.add_subcommand("put", "write KEY of record ID; the value is read from stdin");
  put->add_option("id", args.id, "record id")->required();
  put->add_option("key", args.key, "item key")->required();
  put->add_option("--ttl", args.ttl_seconds, "time to live in seconds (0 = forever)");

  CLI::App* get = app.add_subcommand(
      "get", "write the value of KEY to stdout, or without KEY list the record's items");
  get->add_option("id", args.id, "record id")->required();
  CLI::Option* get_key = get->add_option("key", args.key, "item key");

  CLI::App* del = app.add_subcommand("delete", "delete item KEY of record ID, or the record");
  del->add_option("id", args.id, "record id")->required();
  CLI::Option* del_key = del->add_option("key", args.key, "item key");

  CLI::App* scan = app.add_subcommand("scan", "list every item of the namespace");
  CLI::App* handshake = app.add_subcommand("handshake", "print the namespaces' settings");

  // CLI11 reports bad usage by throwing; nothing is thrown past this function.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitFailure;
  }

  absl::StatusOr<absl::Duration> timeout = Seconds(args.timeout_seconds, "--timeout");
  if (!timeout.ok()) return Fail(timeout.status(), err);
  args.client.timeout = *timeout;
  std::vector<std::string> split = absl::StrSplit(addresses, ',', absl::SkipEmpty());
  if (split.empty()) return Fail(absl::InvalidArgumentError("--addr is empty"), err);
  args.client.address = split.front();
  args.client.more_addresses.assign(split.begin() + 1, split.end());
  absl::StatusOr<std::unique_ptr<KvClient>> client = connect(args.client);
  if (!client.ok()) return Fail(client.status(), err);
  KvClient& kv = **client;

  if (*put) {
    absl::StatusOr<absl::Duration> ttl = Seconds(args.ttl_seconds, "--ttl");
    if (!ttl.ok()) return Fail(ttl.status(), err);
    const std::string value{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) return Fail(absl::DataLossError("cannot read the value from stdin"), err);
    if (absl::Status s = kv.Put(args.ns, args.id, args.key, value, *ttl); !s.ok()) {
      return Fail(s, err);
    }
    return kExitOk;
  }
  if (*get) {
    if (get_key->count() > 0) {
      absl::StatusOr<std::string> value = kv.Get(args.ns, args.id, args.key);
      if (!value.ok()) return Fail(value.status(), err);
      out.write(value->data(), static_cast<std::streamsize>(value->size()));
      out.flush();
      return out ? kExitOk : Fail(absl::UnavailableError("cannot write to stdout"), err);
    }
    absl::StatusOr<std::vector<StoredItem>> items = kv.GetItems(args.ns, args.id, Predicate::All());
    if (!items.ok()) return Fail(items.status(), err);
    if (items->empty()) {
      return Fail(absl::NotFoundError(
                      absl::StrCat("record '", absl::CHexEscape(args.id), "' has no items")),
                  err);
    }
    for (const StoredItem& item : *items) {
      out << absl::CHexEscape(item.key) << "\t" << item.value.size() << "\n";
    }
    return kExitOk;
  }
  if (*del) {
    const absl::Status s =
        del_key->count() > 0 ? kv.Delete(args.ns, args.id, args.key) : kv.Delete(args.ns, args.id);
    return s.ok() ? kExitOk : Fail(s, err);
  }
  if (*scan) {
    const absl::Status s = kv.Scan(args.ns, [&out](const Record& record) {
      const std::string id = absl::CHexEscape(record.id);
      for (const StoredItem& item : record.items) {
        out << id << "\t" << absl::CHexEscape(item.key) << "\t" << item.value.size() << "\n";
      }
      return absl::OkStatus();
    });
    return s.ok() ? kExitOk : Fail(s, err);
  }
  if (*handshake) {
    absl::StatusOr<HandshakeInfo> info = kv.Handshake();
    if (!info.ok()) return Fail(info.status(), err);
    PrintHandshake(*info, out);
    return kExitOk;
  }
  return kExitFailure;  // unreachable: require_subcommand(1)
}

}  // namespace stategate::cli
