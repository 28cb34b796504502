// The subcommands of `lathe`, each registered explicitly by cli/main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/name_lists.h"

namespace lathe::cli {

// Whether stdout was closed when lathe started (`>&-`; main opened /dev/null in its place): a
// result meant for stdout alone (`lathe score --out -`) would then vanish.
inline bool stdout_was_closed = false;

void add_info_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
// `lathe bench` (the data path end to end) and its subcommands `lathe bench train` and
// `lathe bench score`.
void add_bench_command(CLI::App& app);
void add_score_command(CLI::App& app);   // cli/score_command.cpp
void add_export_command(CLI::App& app);  // cli/export_command.cpp
void add_drift_command(CLI::App& app);   // cli/drift_command.cpp
void add_report_command(CLI::App& app);  // cli/report_command.cpp

// Thrown by a command that has printed its result and must still end with a non-zero exit code
// (`lathe drift`: 3 when drift crosses the alert threshold). cli/main.cpp returns `code` and prints
// nothing more. Not a std::exception, so no handler mistakes it for an error.
struct ExitCode {
  int code = 0;
};

// CLI11's "Could not convert: --epochs = 2.5" in Lathe's words: "--epochs: '2.5' is not a whole
// number" (the option's type, from `command`, says what was expected); "--epochs: At Most 1
// required but received 2" as "--epochs is given 2 times; give it once". Other messages pass
// through.
inline std::string plain_parse_message(const CLI::App& command, const std::string& message) {
  const std::string at_most = ": At Most 1 required but received ";
  if (const auto at = message.find(at_most); at != std::string::npos) {
    const std::string times = message.substr(at + at_most.size());
    return message.substr(0, at) + " is given " + times + " times; give it once";
  }
  const std::string prefix = "Could not convert: ";
  const auto equals = message.find(" = ");
  if (message.rfind(prefix, 0) != 0 || equals == std::string::npos) return message;
  const std::string name = message.substr(prefix.size(), equals - prefix.size());
  const std::string value = message.substr(equals + 3);
  std::string expected = "a valid value";
  if (const CLI::Option* option = command.get_option_no_throw(name)) {
    const std::string type = option->get_type_name();
    if (type.find("INT") != std::string::npos || type.find("UINT") != std::string::npos) {
      expected = "a whole number";
    } else if (type.find("FLOAT") != std::string::npos) {
      expected = "a number";
    }
  }
  return name + ": '" + value + "' is not " + expected;
}

// A whole number as a person writes it: an optional sign, then decimal digits; leading zeros
// change nothing ("010" is ten, "08" eight). CLI11 2.1 converts integers with
// strtoll(text, &end, 0), which reads "010" as octal 8, "0x10" as 16 and " 10" as 10, and wraps
// "-1" into an unsigned type. A transform runs before CLI11's conversion and before every check:
// this one hands them the plain decimal spelling ("010" becomes "10") or refuses the value, with
// CLI11 putting the option's name first: "--rows: '0x10' is not a whole number", "--seed: must be
// at least 0 (got -1)", "--workers: must be at most 2147483647 (got 99999999999)" (T's range).
// It has no description, so --help shows the option as before.
template <typename T>
CLI::Validator whole_number() {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>,
                "whole_number<T>: T is an integer type");
  return CLI::Validator(
      [](std::string& input) -> std::string {
        std::string_view digits = input;
        const bool negative = !digits.empty() && digits.front() == '-';
        if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
          digits.remove_prefix(1);
        }
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
          return "'" + input + "' is not a whole number";
        }
        digits.remove_prefix(
            std::min(digits.find_first_not_of('0'), digits.size() - 1));  // "007" -> "7"
        const bool below_zero = negative && digits != "0";
        if (below_zero && std::is_unsigned_v<T>) return "must be at least 0 (got " + input + ")";
        const std::string text = (below_zero ? "-" : "") + std::string(digits);
        T value{};
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size()) {
          return below_zero ? "must be at least " + std::to_string(std::numeric_limits<T>::min()) +
                                  " (got " + input + ")"
                            : "must be at most " + std::to_string(std::numeric_limits<T>::max()) +
                                  " (got " + input + ")";
        }
        input = text;
        return {};
      },
      "", "WHOLE_NUMBER");
}

// The integer type of an option's variable: T, or the element of a std::vector<T> (a list option).
template <typename T>
struct WholeNumberElement {
  using type = T;
};
template <typename T>
struct WholeNumberElement<std::vector<T>> {
  using type = T;
};

// add_option for an integer variable, or a vector of them (a list option): every value is read as a
// decimal whole number that fits the variable's type (whole_number). Every integer option of
// `lathe` is declared with it; CLI11's own add_option would accept "0x10" and read "010" as octal.
template <typename T>
CLI::Option* add_whole_number_option(CLI::App* command, std::string name, T& variable,
                                     std::string description) {
  return command->add_option(std::move(name), variable, std::move(description))
      ->transform(whole_number<typename WholeNumberElement<T>::type>());
}

// Whether a comma-separated list (runtime/name_lists.h: a comma in a name written \,) holds an
// empty item: "", "a,,b", "a," or an item of spaces, which split_name_list leaves out.
inline bool has_empty_item(std::string_view text) {
  std::size_t items = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == ',' || text[i + 1] == '\\')) {
      ++i;
    } else if (text[i] == ',') {
      ++items;
    }
  }
  return split_name_list(text).size() != items;
}

// A check for an option whose value names something: a column (`--label`, `--id`, `--weight`), a
// class, a dataset or a group. An empty value, as `--label "$COL"` gives with COL unset, would read
// as the option left out (a matrix file's label dataset taken as "y", the default group read) or
// fail later naming no option. CLI11 puts the option's name first: "--label: is empty (an unset
// shell variable?): give a column name" (`give`: what the option takes). A --config value is
// checked too (cli/train_command.cpp). No description: --help shows the option as before.
inline CLI::Validator non_empty(std::string give) {
  return CLI::Validator(
      [give](std::string& input) -> std::string {
        if (!input.empty()) return {};
        return "is empty (an unset shell variable?): give " + give;
      },
      "");
}

// non_empty for an option whose value is a comma-separated list (`--drop id,when`, `--impute
// mean,age=median`): an empty item is refused too ("'a,,b' has an empty item"; a --config array
// holding "", `drop = [""]`), where split_name_list would leave it out unsaid.
inline CLI::Validator non_empty_items(std::string give) {
  return CLI::Validator(
      [give](std::string& input) -> std::string {
        if (input.empty()) return "is empty (an unset shell variable?): give " + give;
        if (has_empty_item(input)) return "'" + input + "' has an empty item: give " + give;
        return {};
      },
      "");
}

// Spellings of options that users bring from scikit-learn, PyTorch, XGBoost, Vowpal Wabbit and
// pandas, each with the option of Lathe that does that job, for "did you mean" (suggested_option).
// Suggestions only, never aliases: the meanings differ in detail (XGBoost's eta, VW's passes), and
// a second name would have to be documented and kept. Written with hyphens: an underscore typed is
// read as one (`--batch_size`, `--learning_rate`).
inline constexpr std::pair<std::string_view, std::string_view> kForeignOptionSpellings[] = {
    {"--batch-size", "--batch"},
    {"--bs", "--batch"},
    {"--learning-rate", "--lr"},
    {"--eta", "--lr"},
    {"-l", "--lr"},
    {"--n-epochs", "--epochs"},
    {"--num-epochs", "--epochs"},
    {"--max-iter", "--epochs"},
    {"--max-epochs", "--epochs"},
    {"--passes", "--epochs"},
    {"--random-state", "--seed"},
    {"--random-seed", "--seed"},
    {"--manual-seed", "--seed"},
    {"-o", "--out"},
    {"--output", "--out"},
    {"-f", "--out"},
    {"-i", "--init-model"},
    {"--warm-start", "--init-model"},
    {"--sep", "--delimiter"},
    {"--delim", "--delimiter"},
    {"--separator", "--delimiter"},
    {"--test-size", "--valid-fraction"},
    {"--validation-fraction", "--valid-fraction"},
    {"--validation-split", "--valid-fraction"},
    {"--val-split", "--valid-fraction"},
    {"--early-stopping-rounds", "--patience"},
    {"--n-iter-no-change", "--patience"},
    {"--eval-metric", "--metric"},
    {"--weight-decay", "--l2"},
    {"--alpha", "--l2"},
    {"--lambda", "--l2"},
    {"--reg-lambda", "--l2"},
    {"--reg-alpha", "--l1"},
    {"--target", "--label"},
    {"--label-column", "--label"},
    {"--target-column", "--label"},
    {"--sample-weight", "--weight"},
    {"--objective", "--task"},
    {"--loss-function", "--task"},
    {"--index-col", "--id"},
    {"--max-grad-norm", "--clip-grad"},
    {"--gpu", "--device"},
    {"--cuda", "--device"},
    {"--silent", "--quiet"},
    {"-q", "--quiet"},
    {"--keep-default-na", "--no-default-na"},
};

// The long option names of `command`, with their dashes ("--lr").
inline std::vector<std::string> long_option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

// `typed` (an option `command` does not have, "--batch_size") with hyphens for underscores after
// its dashes, as Python tools spell options.
inline std::string hyphenated(const std::string& typed) {
  std::string name = typed;
  const std::size_t dashes = std::min(typed.find_first_not_of('-'), typed.size());
  std::replace(name.begin() + static_cast<std::ptrdiff_t>(dashes), name.end(), '_', '-');
  return name;
}

// The option of `command` that `typed` (an option it does not have) is another spelling of, or ""
// when it is none: the same name with hyphens for underscores (`--valid_fraction`), or another
// tool's spelling of an option `command` has (kForeignOptionSpellings: `--batch-size` is --batch
// where the command has --batch, and nothing where it has not).
inline std::string respelled_option(const CLI::App& command, const std::string& typed) {
  const std::vector<std::string> names = long_option_names(command);
  const auto has = [&](std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  const std::string name = hyphenated(typed);
  if (name != typed && has(name)) return name;
  for (const auto& [foreign, ours] : kForeignOptionSpellings) {
    if (name == foreign && has(ours)) return std::string(ours);
  }
  return {};
}

// The option of `command` that `typed` (an option it does not have) most likely meant, or "" when
// none is near: respelled_option's, else the name closest by edit distance (closest_name).
inline std::string suggested_option(const CLI::App& command, const std::string& typed) {
  const std::string respelled = respelled_option(command, typed);
  return respelled.empty() ? closest_name(hyphenated(typed), long_option_names(command))
                           : respelled;
}

// `--device auto|cpu|cuda[:N]`, for every command that computes.
// --device, its spelling checked as the command line is read: a typo (`--device gpu`, or an empty
// value from an unset variable) is a usage error before a model or a table is loaded.
inline void add_device_option(CLI::App* command, std::string& device) {
  command->add_option("--device", device, "Where to compute: auto, cpu, cuda or cuda:N")
      ->default_val("auto")
      ->check(CLI::Validator(
          [](std::string& input) -> std::string {
            if (input.empty())
              return "is empty (an unset shell variable?): give auto, cpu, cuda or cuda:N";
            try {
              DeviceContext::requested_cuda_device(input);
            } catch (const UsageError&) {
              return "'" + input + "' is not auto, cpu, cuda or cuda:N";
            }
            return {};
          },
          ""));
}

// A number as a person would write it: 1, 0.25, 1e+30 (the shortest text that reads back the same).
inline std::string number_text(double v) {
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
  return std::string(buffer, end);
}

// Range checks for numeric options whose messages read as the value was given (CLI11's own Range,
// PositiveNumber and NonNegativeNumber print their bounds with std::to_string: "Value 0 not in
// range 0.000000 to 179769313486231570814527..."). CLI11 puts the option's name first:
// "--block-rows: must be at least 1 (got 0)". A value that is not a finite number is refused too.
inline CLI::Validator number_range(double least, double most, bool above_least, std::string description) {
  return CLI::Validator(
      [least, most, above_least](std::string& input) -> std::string {
        const char* text = input.c_str();
        char* end = nullptr;
        const double v = std::strtod(text, &end);
        if (input.empty() || end == text || *end != '\0') return "'" + input + "' is not a number";
        if (!std::isfinite(v)) return "must be a finite number (got " + input + ")";
        if (above_least ? !(v > least) : !(v >= least)) {
          return std::string("must be ") + (above_least ? "above " : "at least ") + number_text(least) + " (got " +
                 input + ")";
        }
        if (!(v <= most)) return "must be at most " + number_text(most) + " (got " + input + ")";
        return {};
      },
      std::move(description));
}
// value >= least (least 0: "NONNEGATIVE", least 1: "POSITIVE", as CLI11 names them in --help).
inline CLI::Validator at_least(double least) {
  return number_range(least, HUGE_VAL, false,
                      least == 0 ? "NONNEGATIVE" : least == 1 ? "POSITIVE" : "at least " + number_text(least));
}
// value > least (a positive real number: above(0)).
inline CLI::Validator above(double least) {
  return number_range(least, HUGE_VAL, true, least == 0 ? "POSITIVE" : "above " + number_text(least));
}
// least <= value <= most.
inline CLI::Validator in_range(double least, double most) {
  return number_range(least, most, false, "in [" + number_text(least) + " - " + number_text(most) + "]");
}

// A comma-separated list of whole numbers of at least `least` ("0,1,2"), each read as
// whole_number<T> reads one. CLI11's own delimiter drops empty items ("1,,2" would give {1, 2}), so
// a list option takes its text whole, this checks every item, and whole_number_list_values splits
// it after.
template <typename T>
CLI::Validator whole_number_list(double least) {
  return CLI::Validator(
      [least](std::string& input) -> std::string {
        std::size_t start = 0;
        while (true) {
          const std::size_t comma = std::min(input.find(',', start), input.size());
          std::string item = input.substr(start, comma - start);
          if (item.empty()) return "'" + input + "' has an empty item: give numbers separated by commas";
          std::string error = whole_number<T>()(item);
          if (error.empty()) error = at_least(least)(item);
          if (!error.empty()) return error;
          if (comma == input.size()) return {};
          start = comma + 1;
        }
      },
      "LIST");
}
template <typename T>
std::vector<T> whole_number_list_values(const std::string& checked) {
  std::vector<T> values;
  std::size_t start = 0;
  while (start <= checked.size()) {
    const std::size_t comma = std::min(checked.find(',', start), checked.size());
    std::string item = checked.substr(start, comma - start);
    whole_number<T>()(item);  // "007" -> "7"
    T value{};
    std::from_chars(item.data(), item.data() + item.size(), value);
    values.push_back(value);
    start = comma + 1;
  }
  return values;
}

// A warn threshold at most its alert threshold. One given alone moves the other's default with it
// (--psi-alert 0.005 alone warns at 0.005 too; --psi-warn 0.3 alone alerts at 0.3), as a user who
// names one threshold means; both given the other way round are a UsageError naming them:
// "--psi-warn 0.3 must not exceed --psi-alert 0.2".
inline void check_warn_below_alert(const CLI::App* command, const char* warn, double& warn_value, const char* alert,
                                   double& alert_value) {
  if (warn_value <= alert_value) return;
  if (command->count(warn) == 0) {
    warn_value = alert_value;
    return;
  }
  if (command->count(alert) == 0) {
    alert_value = warn_value;
    return;
  }
  const auto given = [&](const char* flag, double value) {
    return std::string(flag) + " " + number_text(value) + (command->count(flag) == 0 ? " (its default)" : "");
  };
  throw UsageError(given(warn, warn_value) + " must not exceed " + given(alert, alert_value));
}

}  // namespace lathe::cli
