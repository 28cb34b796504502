// `lathe train DATA.h5 --label COL --task regression|binary|multiclass --out MODEL.h5 [...]`.
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/note_printer.h"
#include "cli/output_paths.h"
#include "cli/preparation_options.h"
#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/prepared_data.h"
#include "io/run_options.h"
#include "io/temporary_file.h"
#include "io/train_table.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/metrics.h"
#include "runtime/name_lists.h"

namespace lathe::cli {

namespace {

// The live bar of `lathe train` on a terminal: during an epoch one line, redrawn with '\r' at most
// five times a second ("epoch 3/20 [########............]  40%  1234567 rows/s  eta 0m42s"),
// erased when the epoch's steps end, so the epoch's own line (runtime/trainer.cpp) takes its place.
class LiveProgressBar {
 public:
  LiveProgressBar() = default;
  LiveProgressBar(const LiveProgressBar&) = delete;
  LiveProgressBar& operator=(const LiveProgressBar&) = delete;
  ~LiveProgressBar() { erase(); }  // an error ends the run mid-epoch: its message starts the line

  void update(const EpochProgress& p) {
    if (p.rows <= 0 || p.rows_done >= p.rows) {
      erase();
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (drawn_once_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
    drawn_once_ = true;
    last_draw_ = now;
    const double fraction = static_cast<double>(p.rows_done) / static_cast<double>(p.rows);
    constexpr int kBarCells = 20;
    const int full = static_cast<int>(fraction * kBarCells);
    std::string line = p.name + " " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs) +
                       " [" + std::string(static_cast<std::size_t>(full), '#') +
                       std::string(static_cast<std::size_t>(kBarCells - full), '.') + "] " +
                       std::to_string(static_cast<int>(fraction * 100.0)) + "%";
    if (p.seconds > 0 && p.rows_done > 0) {
      const double rate = static_cast<double>(p.rows_done) / p.seconds;
      const double left_rows = static_cast<double>(p.rows - p.rows_done) +
                               static_cast<double>(p.epochs - p.epoch) * static_cast<double>(p.rows);
      const auto eta = static_cast<long long>(left_rows / rate + 0.5);
      line += "  " + std::to_string(static_cast<long long>(rate)) + " rows/s  eta " + std::to_string(eta / 60) + "m" +
              std::to_string(eta % 60) + "s";
    }
    // Spaces over what is left of a longer line drawn before.
    const std::size_t width = line.size();
    if (width < width_) line += std::string(width_ - width, ' ');
    width_ = width;
    std::cerr << '\r' << line << std::flush;
  }

 private:
  void erase() {
    if (width_ == 0) return;
    std::cerr << '\r' << std::string(width_, ' ') << '\r' << std::flush;
    width_ = 0;
  }

  bool drawn_once_ = false;
  std::chrono::steady_clock::time_point last_draw_;
  std::size_t width_ = 0;  // characters of the line on the screen; 0: none
};

nlohmann::json metrics_json(const MetricSet& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.values) j[k] = metric_json<nlohmann::json>(v);
  return j;
}

// One TOML value as the text CLI11 would have read on the command line.
std::string toml_value_text(const toml::node& node, const std::string& where) {
  if (const auto* v = node.as_string()) return v->get();
  if (const auto* v = node.as_boolean()) return v->get() ? "true" : "false";
  if (const auto* v = node.as_integer()) return std::to_string(v->get());
  if (const auto* v = node.as_floating_point()) {
    char buffer[64];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, v->get()).ptr;  // shortest round trip
    return std::string(buffer, end);
  }
  throw UsageError(where + ": expected a string, number or boolean");
}

// The help of --config (`lathe train` is the one command that takes it).
constexpr const char* kConfigHelp =
    "TOML file of options: top-level `key = value` lines whose keys are the long option names "
    "without dashes "
    "(task = \"binary\", epochs = 30, lr = 0.05, missing-indicators = true; an array is joined "
    "with commas, and an "
    "empty one, drop = [] or cross = [], lists no columns); "
    "options on the command line override it; an unknown key is an error; relative paths in it are "
    "taken from the "
    "current directory, as on the command line";

// The options whose value names a file that must exist: checked as the config file gives them, so
// that a bad value names the key and the file.
constexpr const char* kInputFileKeys[] = {"resume", "valid", "init-model"};

// The options whose value is a list that may hold no item: an empty array (`drop = []`) lists no
// columns, as leaving the key out does, where an empty string on the command line (`--drop ""`, an
// unset shell variable) is refused. Of another option an empty array gives no value.
constexpr const char* kEmptyListKeys[] = {"drop", "cross"};

// Options that are alternatives (given both, the run stops): a config key whose alternative is on
// the command line is overridden by it, as a key of the option itself would be.
constexpr std::pair<const char*, const char*> kAlternativeKeys[] = {{"valid", "valid-fraction"},
                                                                    {"valid-fraction", "valid"}};

// Applies `lathe train --config FILE`: each top-level key is a long option name without the dashes;
// an option already given on the command line keeps its command-line value. Arrays are joined with
// commas (`cross = ["a*b", "c*d"]` is `--cross a*b,c*d`). Returns the options it set ("--cross").
std::set<std::string> apply_config_file(CLI::App* cmd, const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status)) throw InputError("--config: " + path + " is a folder, not a TOML file");
  if (!std::filesystem::exists(status)) throw InputError("--config: " + path + ": no such file");
  // A pipe too (`--config <(generate-config)`), read whole; a device is no configuration.
  if (!std::filesystem::is_regular_file(status) && !std::filesystem::is_fifo(status)) {
    throw InputError("--config: " + path + " is not a file or a pipe");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("--config: " + path + ": cannot be read");
  // A configuration is a few lines; more than this is not one.
  constexpr std::size_t kMostBytes = std::size_t{16} << 20;
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMostBytes) throw InputError("--config: " + path + " holds more than 16 MB: not a configuration");
  }
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw InputError("--config: " + path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " +
                     std::string(e.description()));
  }
  std::set<std::string> applied;
  for (const auto& [key_node, node] : table) {
    const std::string key(key_node.str());
    const std::string where = "--config: " + path + ": key '" + key + "'";
    if (key == "config" || key == "help") {
      throw UsageError(
          where + ": a config file holds the options of one run, not --" + key +
          (key == "config" ? " (a config names no other config; give the options here)" : ""));
    }
    CLI::Option* opt = key.size() > 1 ? cmd->get_option_no_throw("--" + key) : nullptr;
    if (opt == nullptr) {
      std::vector<std::string> keys;
      for (const CLI::Option* o : cmd->get_options()) {
        for (const auto& name : o->get_lnames()) {
          if (name != "config" && name != "help") keys.push_back(name);
        }
      }
      // `batch_size = 256`, as a Python script's settings are named: --batch's key is batch.
      const std::string respelled =
          key.size() > 1 ? respelled_option(*cmd, "--" + key) : std::string();
      const std::string near = respelled.empty() ? closest_name(key, keys) : respelled.substr(2);
      throw UsageError(where + " is not an option of lathe train" +
                       (near.empty() ? std::string() : " (did you mean '" + near + "'?)") +
                       "; keys are long option names without the dashes");
    }
    std::string text;
    if (const auto* array = node.as_array()) {
      if (array->empty()) {
        if (std::find(std::begin(kEmptyListKeys), std::end(kEmptyListKeys), key) !=
            std::end(kEmptyListKeys))
          continue;
        throw UsageError(
            where + ": an empty array gives no value; leave the key out for the option's default");
      }
      // Each item as a list takes it: a comma in a column name escaped (runtime/name_lists.h).
      for (const auto& item : *array) {
        if (!text.empty()) text += ',';
        // An empty name (`drop = [""]`) names no column; an empty array lists none (above).
        const std::string name = toml_value_text(item, where);
        if (item.is_string() && name.find_first_not_of(" \t") == std::string::npos) {
          throw UsageError(where + ": the array holds an empty name ('" + name +
                           "'): give names, or [] for none");
        }
        text += listed_name(name);
      }
    } else {
      text = toml_value_text(node, where);
      // An empty string in a file is no unset shell variable, which the option's own check would
      // suggest (`drop = ""`): say what the file can give instead.
      if (node.is_string() && text.find_first_not_of(" \t") == std::string::npos) {
        const bool list = std::find(std::begin(kEmptyListKeys), std::end(kEmptyListKeys), key) !=
                          std::end(kEmptyListKeys);
        throw UsageError(
            where + ": an empty string ('" + text + "') gives no value; " +
            (list ? "give names, or [] for none" : "leave the key out for the option's default"));
      }
    }
    if (opt->count() > 0) continue;  // the command line wins
    const bool alternative_given = std::any_of(std::begin(kAlternativeKeys), std::end(kAlternativeKeys), [&](const auto& alt) {
      const CLI::Option* other = cmd->get_option_no_throw(std::string("--") + alt.second);
      return key == alt.first && other != nullptr && other->count() > 0 && !applied.count(std::string("--") + alt.second);
    });
    if (alternative_given) continue;  // so does an alternative given there
    const bool flag = opt->get_expected_min() == 0;
    if (flag && text != "true" && text != "false") throw UsageError(where + ": expected true or false");
    for (const char* file_key : kInputFileKeys) {
      if (key != file_key) continue;
      if (!node.is_string()) throw UsageError(where + ": expected a file name in quotes (got " + text + ")");
      std::error_code ec;
      if (!std::filesystem::exists(text, ec)) throw InputError(where + ": " + text + ": no such file");
    }
    try {
      opt->add_result(text);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw UsageError(where + ": " + plain_parse_message(*cmd, e.what()));
    }
    applied.insert("--" + key);
  }
  return applied;
}

// What option_value appends to an option's default (an option the run did not give).
constexpr const char* kDefaultSuffix = " (the default)";

// The value an option had in the run whose options JSON is `options` (a model's or checkpoint's
// `options`: only those given), or its default.
std::string option_value(const nlohmann::json& options, const CLI::Option* option) {
  const std::string key = option->get_lnames().front();
  if (options.contains(key) && options[key].is_array() && !options[key].empty() && options[key].back().is_string()) {
    return options[key].back().get<std::string>();
  }
  return option->get_default_str() + kDefaultSuffix;
}

// The value `flag` has in this run, given or its default (as option_value writes it).
std::string option_value_now(CLI::App* cmd, const char* flag) {
  const CLI::Option* option = cmd->get_option(flag);
  return option->count() > 0 ? option->results().back()
                             : option->get_default_str() + kDefaultSuffix;
}

// Whether two option values (option_value's) are equal: the same text, or the same number ("0.10"
// and "0.1"); "auto", the default --valid-fraction, is no number.
bool same_option_value(std::string a, std::string b) {
  for (std::string* v : {&a, &b}) {
    if (v->ends_with(kDefaultSuffix))
      v->resize(v->size() - std::string_view(kDefaultSuffix).size());
  }
  if (a == b) return true;
  char *end_a = nullptr, *end_b = nullptr;
  const long double x = std::strtold(a.c_str(), &end_a), y = std::strtold(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}

// The options of the run that fitted the preparation `--init-model MODEL` keeps
// (preparation_run_options), or null when not known.
nlohmann::json fitting_run_options(const std::filesystem::path& model_path) {
  ModelLoadOptions light;
  light.profile_labels = false;
  const std::string options = preparation_run_options(load_model(model_path, nullptr, light));
  return options.empty() ? nlohmann::json() : nlohmann::json::parse(options, nullptr, false);
}

// `--resume CHECKPOINT`: the validation split must be the one of the run that wrote it (the same
// --valid or --valid-fraction, and with a fraction the same --seed, which picks the rows), else the
// resumed run trains on rows that run validated on and fits another preparation. Checked before
// anything is read; InputError naming the checkpoint and what differs.
void check_resume_split(CLI::App* cmd, const TrainTableOptions& o) {
  if (!(o.valid_fraction < 1)) return;  // refused by train_table, as a usage error (below 0: automatic)
  const ModelFile checkpoint = load_checkpoint(o.resume_path).model;
  const nlohmann::json was = nlohmann::json::parse(checkpoint.options_json, nullptr, false);
  if (!was.is_object()) return;
  const auto differs = [&](const char* flag) {
    const CLI::Option* option = cmd->get_option(flag);
    const std::string then = option_value(was, option), now = option_value_now(cmd, flag);
    return same_option_value(then, now)
               ? std::string()
               : std::string(flag) + " is " + now + " here but was " + then;
  };
  const bool valid_then = was.contains("valid"), valid_now = !o.valid_path.empty();
  std::string what;
  if (valid_then != valid_now) {
    what = valid_now ? "--valid is given here but was not"
                     : "--valid is not given here but was (" +
                           option_value(was, cmd->get_option("--valid")) + ")";
  } else if (!valid_now) {
    // The share it held out (its metrics' valid_fraction, of train_rows + valid_rows rows) against
    // this run's, given or automatic: a checkpoint of a run that took the default before it was
    // automatic (0.2) differs from today's on more than 50,000 rows, though neither run gave it.
    const nlohmann::json metrics = nlohmann::json::parse(checkpoint.metrics_json, nullptr, false);
    const auto number = [&](const char* key) {
      return metrics.is_object() && metrics.contains(key) && metrics[key].is_number() ? metrics[key].get<double>() : NAN;
    };
    const double then = number("valid_fraction"), rows = number("train_rows") + number("valid_rows");
    double now = o.valid_fraction;
    if (std::isfinite(then) && std::isfinite(rows)) {
      const bool given = o.valid_fraction >= 0;  // else automatic: not given, or "auto"
      if (!given) now = automatic_valid_fraction(static_cast<std::int64_t>(rows));
      // Equal up to the last bits: a checkpoint of an earlier Lathe recorded the automatic 20% as
      // (0.2 n) / n, 0.19999999999999998 for some n, which splits the rows as 0.2 does.
      if (std::abs(now - then) > 1e-12 * std::max(std::abs(now), std::abs(then))) {
        std::ostringstream text;
        text << "--valid-fraction is "
             << (given ? option_value_now(cmd, "--valid-fraction") : "automatic") << " here ("
             << now << " of its " << static_cast<std::int64_t>(rows) << " rows) but was " << then;
        what = text.str();
      }
    } else {
      what = differs("--valid-fraction");
    }
    if (what.empty() && now != 0) what = differs("--seed");
  }
  if (what.empty()) return;
  throw InputError("--resume " + o.resume_path.string() + ": " + what + " in the run that wrote it, so the validation " +
                   "split differs: the preparation is fitted on the training rows, and the held-out rows must stay " +
                   "unseen; resume with that run's --seed, --valid-fraction and --valid");
}

// `--init-model OLD`, checked before anything is read so that an error names both files and the
// way out: first its task, label and kind. Without --refit-prep, OLD's preparation is applied to
// DATA (and a --valid file), whose columns must be its inputs with their types. A binary task keeps
// OLD's positive class, which `--positive` may have chosen: this run's must be the same.
void check_warm_start(const TrainTableOptions& o, const std::string& data) {
  const ModelFile init = load_model(o.init_model);
  const std::string old = o.init_model.string() + " (--init-model)";
  // Another task, label or kind is the first thing to hear: OLD's preparation reading other
  // columns (below) follows from it.
  check_init_model_kind(init, o);
  TableReader reader(data, o.read);
  check_retraining_preparation(init, read_prepared_tag(data), data, o.refit_prep);
  if (!o.refit_prep) {
    const std::vector<ModelInput> inputs = preparation_inputs(init.preparation);
    try {
      check_inputs(inputs, "the preparation of " + old, "fitted", reader.columns(), data);
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + "; --refit-prep fits the preparation on " + data +
                       " instead (carrying the weights of the features both share)");
    }
    if (!o.valid_path.empty()) {
      const TableReader valid(o.valid_path, o.read);
      check_inputs(inputs, "the preparation of " + old, "fitted", valid.columns(), o.valid_path.string());
    }
  }
  if (o.task != Task::binary || init.task != Task::binary || init.classes.size() != 2) return;
  const std::string& negative = init.classes[0];
  const std::string& positive = init.classes[1];
  const std::string classes = " (classes " + negative + ", " + positive + ")";
  if (!o.positive.empty()) {
    if (o.positive != negative) return;
    throw InputError(old + " predicts '" + positive + "' as its positive class" + classes + "; this run's --positive is '" +
                     o.positive + "': give --positive " + positive + " to retrain it");
  }
  // This run's default: the second label in sorted order (numeric labels by value).
  const auto label = std::find_if(reader.columns().begin(), reader.columns().end(),
                                  [&](const ColumnInfo& c) { return c.name == o.preparation.label; });
  if (label == reader.columns().end()) return;  // named by train_table
  bool sorted = negative < positive;
  if (label->type != ColumnType::categorical) {
    char* end_n = nullptr;
    char* end_p = nullptr;
    const double n = std::strtod(negative.c_str(), &end_n), p = std::strtod(positive.c_str(), &end_p);
    if (*end_n != '\0' || *end_p != '\0') return;
    sorted = n < p;
  }
  if (sorted) return;
  throw InputError(old + " predicts '" + positive + "' as its positive class" + classes +
                   ", chosen by --positive; this run's would be '" + negative +
                   "' (the second label in sorted order): give --positive " + positive + " to retrain it");
}

// Checks every path a checkpoint of this run may be written to: the pattern itself, or with {epoch}
// replaced by each checkpoint epoch up to `epochs`. Checkpoints never collide with each other
// (their epochs differ), so only the outputs and inputs in `paths` are compared. A derived path
// that does not exist, in the first one's folder, under a name no other output has, cannot collide:
// it is skipped, so a long run with few collisions possible costs one stat per checkpoint. A
// checkpoint replaces an earlier model or checkpoint only (refuse_replacing_another_kind); a path
// that does not exist replaces nothing.
void check_checkpoint_paths(const OutputPathCheck& paths, const WrittenFile& pattern, std::int32_t every,
                            std::int32_t epochs, const std::vector<std::filesystem::path>& other_outputs) {
  if (pattern.path.find("{epoch}") == std::string::npos) {
    paths.check(pattern);
    refuse_replacing_another_kind(pattern, ExistingFile::model);
    return;
  }
  std::optional<std::filesystem::path> first_folder;
  for (std::int64_t epoch = every; epoch <= epochs; epoch += every) {
    WrittenFile derived = pattern;
    derived.path = checkpoint_path_for(pattern.path, static_cast<std::int32_t>(epoch)).string();
    const std::filesystem::path path(derived.path);
    bool may_collide = !first_folder || path.parent_path() != *first_folder;
    std::error_code ec;
    may_collide = may_collide || std::filesystem::exists(path, ec);
    for (const auto& other : other_outputs) may_collide = may_collide || other.filename() == path.filename();
    if (!first_folder) first_folder = path.parent_path();
    if (!may_collide) continue;
    derived.option = pattern.option + " (epoch " + std::to_string(epoch) + ")";
    paths.check(derived);
    refuse_replacing_another_kind(derived, ExistingFile::model);
  }
}

// The values `lathe train` parses its options into.
struct TrainArgs {
  std::string data, out, device = "auto", group, task, model = "linear", optimizer = "adam",
                         schedule = "cosine", valid, metric, positive, weight, class_weight,
                         mode = "exact", metrics_log, config, checkpoint, resume,
                         sparse_updates = "lazy", target_transform, valid_fraction = "auto",
                         refit = "auto";
  PreparationArgs preparation;
  TrainTableOptions options;
  bool dedup = false, quiet = false;
  std::int64_t block_rows = 65536;
  float huber_delta = 0.0f;
  double memory_budget_mb = 0.0;
};

// The prefix that says a value came from the config file, as the file's own checks say it
// ("--config: run.toml: key 'lr': "), for an error about an option's value whose message starts
// with the option ("--lr must be a finite number above 0 (got nan)", "--positive: 'true' is not a
// label ..."). The checks made once the file has been applied (run_train's range checks, the label
// checks of train_table) need not know where a value came from. "" when the message starts with no
// option the file set, or already names the file.
std::string config_origin(const std::string& message, const std::set<std::string>& from_config,
                          const std::string& config) {
  if (message.rfind("--", 0) != 0 || message.find("--config") != std::string::npos) return "";
  const std::string flag = message.substr(0, message.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-", 2));
  if (from_config.count(flag) == 0) return "";
  return "--config: " + config + ": key '" + flag.substr(2) + "': ";
}

// Everything `lathe train` does once the --config file (if any) has been applied; `from_config`:
// the options it set ("--lr").
void run_train(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args, const std::set<std::string>& from_config) {
  // An empty input path reads as no option: `--init-model "$PREV"` with PREV unset trained from
  // scratch, recording no parent, and `--valid "$V"` held out a split instead.
  refuse_empty_paths(*cmd, {"data", "--out", "--metrics-log", "--checkpoint", "--config", "--valid",
                            "--init-model", "--resume"});
  if (args->task.empty()) throw UsageError("--task is required (on the command line or in --config)");
  if (args->out.empty()) throw UsageError("--out is required (on the command line or in --config)");
  // Checked with --task and --out, before a device is selected or a file read.
  if (args->preparation.label.empty()) {
    throw UsageError("--label is required (on the command line or in --config)");
  }
  TrainTableOptions& o = args->options;
  if (args->block_rows <= 0) throw UsageError("--block-rows must be positive (got " + std::to_string(args->block_rows) + ")");
  // 0 is the option's internal "not given" (the default window); given, it must be a real size.
  if (cmd->count("--window-rows") > 0 && o.window_rows <= 0) {
    throw UsageError("--window-rows must be positive (got " + std::to_string(o.window_rows) + ")");
  }
  // Bounds that CLI11's types do not give (a NaN passes every comparison, so each check is
  // written to fail on it). A config file's values have been applied by now.
  // The value as it was given (an integer stays an integer), not std::to_string's "-1.000000".
  const auto given_text = [&](const char* flag, double value) {
    const auto& results = cmd->get_option(flag)->results();
    return results.empty() ? number_text(value) : results.back();
  };
  const auto finite_at_least = [&](const char* flag, double value, double least, bool strictly,
                                   double most = std::numeric_limits<double>::infinity()) {
    if (cmd->count(flag) == 0) return;
    if (!(std::isfinite(value) && (strictly ? value > least : value >= least))) {
      throw UsageError(std::string(flag) + " must be a finite number " +
                       (strictly ? "above " : "of at least ") + number_text(least) + " (got " +
                       given_text(flag, value) + ")");
    }
    if (value > most) {
      throw UsageError(std::string(flag) + " must be at most " + number_text(most) + " (got " +
                       given_text(flag, value) + ")");
    }
  };
  finite_at_least("--lr", o.trainer.learning_rate, 0.0, true);
  finite_at_least("--huber-delta", args->huber_delta, 0.0, true);
  finite_at_least("--decay", o.trainer.decay, 0.0, false);
  finite_at_least("--warmup", static_cast<double>(o.trainer.warmup_steps), 0.0, false);
  finite_at_least("--patience", static_cast<double>(o.trainer.patience), 0.0, false);
  finite_at_least("--cooldown", static_cast<double>(o.trainer.cooldown_epochs), 0.0, false);
  finite_at_least("--stop-margin", o.stop_margin, 0.0, false);
  // The budget's bytes are counted in rows of a window (an int64) and printed as a float: a
  // budget of 1e300 MB overflowed both (undefined behaviour; "0 rows by the budget", "budget inf
  // MB"). A million terabytes is more than any machine holds.
  constexpr double kMaxMemoryBudgetMb = 1e12;
  finite_at_least("--memory-budget-mb", args->memory_budget_mb, 0.0, true, kMaxMemoryBudgetMb);
  if (o.trainer.checkpoint_every > 0) {
    o.checkpoint_path = args->checkpoint.empty()
                            ? std::filesystem::path(args->out).replace_extension(".checkpoint.h5")
                            : std::filesystem::path(args->checkpoint);
  }

  // A missing checkpoint or earlier model is named with its option: "m.h5: no such file" alone
  // does not say which of the run's files it is.
  for (const auto& [flag, path] : {std::pair<const char*, std::string>{"--resume", args->resume},
                                   std::pair<const char*, std::string>{"--init-model", o.init_model.string()}}) {
    std::error_code ec;  // set when the file may exist but cannot be looked at: its reader says why
    if (!path.empty() && !std::filesystem::exists(path, ec) && !ec) {
      throw InputError(std::string(flag) + " " + path + ": no such file");
    }
  }
  // A file of the wrong kind, named with its option: the readers' own messages give the order of
  // `lathe score MODEL.h5 DATA.h5`'s arguments, which this command does not have.
  refuse_input_of_another_kind(
      "--init-model", o.init_model.string(), true,
      "the model to continue from (the --out of an earlier `lathe train`)");
  refuse_input_of_another_kind("--valid", args->valid, false, "the labeled rows to validate on");

  // Before anything is read: no output may replace an input or another output. A checkpoint may
  // be the --resume checkpoint it continues (read whole at the start; each new one is later).
  const std::vector<ReadFile> checkpoint_inputs = {{"the input file", args->data},
                                                   {"the --valid file", args->valid},
                                                   {"the --init-model file", o.init_model.string()},
                                                   {"the --config file", args->config}};
  std::vector<ReadFile> inputs = checkpoint_inputs;
  inputs.push_back({"the --resume checkpoint", args->resume});
  const WrittenFile model_output{"--out", args->out, "the model"};
  const WrittenFile log_output{"--metrics-log", args->metrics_log, "the metrics log"};
  check_output_paths({model_output, log_output}, inputs);
  // A model replaces an earlier model only: not a table of data, nor a CSV of data (`--out` given
  // a data file's name).
  refuse_replacing_another_kind(model_output, ExistingFile::model);
  // Likewise the log replaces an earlier log only.
  refuse_replacing_another_kind(log_output, ExistingFile::metrics_log);
  if (o.trainer.checkpoint_every > 0) {
    OutputPathCheck checkpoint_paths(checkpoint_inputs);
    checkpoint_paths.add(model_output);
    checkpoint_paths.add(log_output);
    const WrittenFile pattern{
        args->checkpoint.empty() ? "the checkpoint (--out with .checkpoint.h5)" : "--checkpoint",
        o.checkpoint_path.string(), "the checkpoints", "--checkpoint"};
    // Without --epochs a small training set may run up to kMaxDefaultEpochs (default_epochs_for).
    const std::int32_t last_epoch =
        cmd->count("--epochs") == 0 ? std::max(o.trainer.epochs, kMaxDefaultEpochs) : o.trainer.epochs;
    check_checkpoint_paths(checkpoint_paths, pattern, o.trainer.checkpoint_every, last_epoch,
                           {args->out, args->metrics_log});
  }

  o.default_batch = cmd->count("--batch") == 0;  // a --config value counts as given
  o.default_epochs = cmd->count("--epochs") == 0;
  o.default_lr = cmd->count("--lr") == 0;
  o.default_optimizer = cmd->count("--optimizer") == 0;
  o.default_scale = cmd->count("--scale") == 0;
  o.default_patience = cmd->count("--patience") == 0;
  o.hash_buckets_given = cmd->count("--hash-buckets") > 0;
  o.metric_given = cmd->count("--metric") > 0;
  o.stop_margin_given = cmd->count("--stop-margin") > 0;
  o.window_rows_given = cmd->count("--window-rows") > 0;
  if (cmd->count("--valid") > 0 && cmd->count("--valid-fraction") > 0) {
    throw UsageError("--valid and --valid-fraction are alternatives: give one (with --valid every training row "
                     "trains)");
  }
  // A fraction below 0 asks train_table for the automatic one (the default, or "auto"): refused
  // when given as a number.
  o.valid_fraction = args->valid_fraction == "auto" ? -1.0 : std::strtod(args->valid_fraction.c_str(), nullptr);
  if (cmd->count("--valid-fraction") > 0 && args->valid_fraction != "auto" &&
      !(o.valid_fraction >= 0 && o.valid_fraction < 1)) {
    throw UsageError("--valid-fraction must be at least 0 and below 1 (got " +
                     cmd->get_option("--valid-fraction")->results().back() + ")");
  }
  o.resume_path = args->resume;
  if (o.refit_prep && o.init_model.empty()) {
    throw UsageError("--refit-prep refits the preparation of the --init-model model: it needs --init-model");
  }
  if (!o.init_model.empty() && !o.refit_prep) {
    // The run keeps OLD's preparation: an option that would fit one would be ignored, yet recorded.
    // One with the value that fitted OLD's is what it keeps: the first run's command repeated with
    // --init-model added (QA: its --drop was refused).
    std::optional<nlohmann::json> fitted_with;
    for (const char* key : kPreparationOptions) {
      const std::string name = std::string("--") + key;
      if (cmd->count(name) == 0) continue;
      if (!fitted_with) fitted_with = fitting_run_options(o.init_model);
      if (!fitted_with->is_null() &&
          same_option_value(option_value(*fitted_with, cmd->get_option(name)),
                            option_value_now(cmd, name.c_str()))) {
        continue;
      }
      throw UsageError(name +
                       (from_config.count(name) ? " (in --config " + args->config + ")" : "") +
                       " fits a preparation, but --init-model " + o.init_model.string() +
                       " keeps the preparation of that model: add --refit-prep to fit one on this "
                       "data, or leave out " +
                       name);
    }
  }
  o.trainer.mode = args->mode == "parallel" ? TrainMode::parallel : TrainMode::exact;
  if (o.trainer.sync_every < 1) throw UsageError("--sync-every must be at least 1 (got " + std::to_string(o.trainer.sync_every) + ")");
  o.task = args->task == "regression" ? Task::regression : args->task == "binary" ? Task::binary : Task::multiclass;
  o.kind = args->model == "fm" ? ModelKind::fm : ModelKind::linear;
  // The names are optimizer_name's (the --optimizer check lists them).
  for (const OptimizerKind kind :
       {OptimizerKind::sgd, OptimizerKind::momentum, OptimizerKind::nesterov,
        OptimizerKind::adagrad, OptimizerKind::adam, OptimizerKind::adamw}) {
    if (args->optimizer == optimizer_name(kind)) o.optimizer.kind = kind;
  }
  o.optimizer.lazy_sparse = args->sparse_updates == "lazy";
  o.refit = args->refit == "yes"  ? RefitChoice::yes
            : args->refit == "no" ? RefitChoice::no
                                  : RefitChoice::automatic;
  o.trainer.schedule = args->schedule == "inverse" ? ScheduleKind::inverse_time
                       : args->schedule == "cosine" ? ScheduleKind::cosine : ScheduleKind::constant;
  // --schedule inverse without --decay: once per epoch, lr / (1 + epochs done). The steps per
  // epoch follow the training rows and the batch, which only the trainer knows: a decay below 0
  // asks it for 1 / (steps per epoch) (TrainerOptions::decay, runtime/trainer.h).
  if (o.trainer.schedule == ScheduleKind::inverse_time && cmd->count("--decay") == 0) o.trainer.decay = -1.0f;
  // Options of another task: a usage error naming the option given, not one it implies.
  if (cmd->count("--huber-delta") > 0 && o.task != Task::regression) {
    throw UsageError("--huber-delta needs --task regression (it chooses the regression loss; this run's task is " +
                     args->task + ")");
  }
  if (cmd->count("--target-transform") > 0) {
    if (o.task != Task::regression) {
      throw UsageError("--target-transform needs --task regression (it transforms the regression label; this run's "
                       "task is " + args->task + ")");
    }
    o.target_transform = parse_target_transform(args->target_transform);
  }
  // On the log scale a slope extrapolates exponentially, and a few rows far outside the training
  // rows' values decided the validation metric: on diamonds, widths of 0 or 31.8 mm (5 and 23
  // standard deviations out, where the other sizes are ordinary) met an fm's slopes per bin, which
  // the collinear sizes leave free to wander, so their predictions moved by factors of hundreds from
  // epoch to epoch (and one was 77 times its price). Clipping to the 0.1% and 99.9% training
  // quantiles bounds such rows and hardly any other: the curve is smooth and the test RMSE lower
  // (README, `--target-transform`). A kept preparation (--init-model without --refit-prep) is not
  // refitted, so it is not clipped.
  // A retraining keeps --init-model's transform unless --target-transform is given (train_table),
  // and one that refits the preparation takes the same default clipping.
  TargetTransform transform = o.target_transform.value_or(TargetTransform::none);
  std::string transform_source = std::string("--target-transform ") + target_transform_name(transform);
  if (!o.target_transform && !o.init_model.empty() && o.refit_prep && o.task == Task::regression &&
      cmd->count("--clip") == 0) {
    ModelLoadOptions light;
    light.profile_labels = false;
    const ModelFile init = load_model(o.init_model, nullptr, light);
    if (init.task == Task::regression) transform = init.target_transform;
    transform_source = o.init_model.string() + "'s --target-transform " + target_transform_name(transform);
  }
  const bool log_scale = transform != TargetTransform::none;
  const bool fits_preparation = o.init_model.empty() || o.refit_prep;
  std::string default_clip_note;
  if (log_scale && fits_preparation && cmd->count("--clip") == 0) {
    args->preparation.clip = "quantile:0.001:0.999";
    default_clip_note =
        transform_source +
        ": numeric columns are clipped to their 0.1% and 99.9% training quantiles (--clip "
        "quantile:0.001:0.999), as a slope on the log scale extrapolates exponentially beyond "
        "them; --clip none keeps every value";
  }
  o.preparation = parse_preparation_args(args->preparation);
  if (cmd->count("--metric") > 0) {  // given empty too: it named no metric
    const std::vector<std::string> names = metric_names(o.task);
    if (std::find(names.begin(), names.end(), args->metric) == names.end()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw UsageError("--metric: '" + args->metric + "' is not a metric of a " + args->task + " task (" + list + ")");
    }
  }
  if (args->huber_delta > 0) {
    o.huber = true;
    o.huber_delta = args->huber_delta;
  }
  o.trainer.metric = args->metric;
  // Huber loss is chosen for outliers, which dominate RMSE: stop early on MAE unless told otherwise.
  if (o.huber && o.trainer.metric.empty()) o.trainer.metric = "mae";
  o.positive = args->positive;
  o.weight_column = args->weight;
  o.balanced_class_weights = args->class_weight == "balanced";
  o.valid_path = args->valid;
  o.dedup = args->dedup;
  o.read.group = args->group;
  o.read.block_rows = args->block_rows;
  o.trainer.progress = !args->quiet;
  // On a terminal, a live bar during each epoch; on a pipe or file only the epoch lines.
  std::shared_ptr<LiveProgressBar> bar;
  if (!args->quiet && ::isatty(STDERR_FILENO) == 1) {
    bar = std::make_shared<LiveProgressBar>();
    // Weak: the bar goes (erased) with this scope, also when an error unwinds it.
    o.trainer.on_epoch_progress = [weak = std::weak_ptr<LiveProgressBar>(bar)](const EpochProgress& p) {
      if (const auto live = weak.lock()) live->update(p);
    };
  }
  o.memory_budget_bytes = args->memory_budget_mb * 1e6;
  // The log is written under a temporary name and takes its place only when training succeeds, so
  // a failed run leaves an earlier log as it was.
  std::optional<TemporaryOutput> log_file;
  std::ofstream log;
  if (!args->metrics_log.empty()) {
    log_file.emplace(args->metrics_log);
    log.open(log_file->path());
    if (!log) throw InputError("--metrics-log: cannot write " + args->metrics_log);
    o.trainer.metrics_log = &log;
    o.trainer.metrics_log_name = args->metrics_log;
  }
  nlohmann::json options_json = nlohmann::json::object();
  for (const CLI::Option* opt_ptr : cmd->get_options()) {
    if (opt_ptr->count() > 0 && !opt_ptr->get_lnames().empty()) {
      options_json[opt_ptr->get_lnames().front()] = opt_ptr->results();
    }
  }
  o.options_json = options_json.dump();
  // --checkpoint-every N past the run's last epoch writes nothing: said before training. Without
  // --epochs, a small training set may take up to kMaxDefaultEpochs (default_epochs_for): the note
  // after training then says whether a checkpoint epoch was reached.
  const std::int32_t most_epochs =
      o.default_epochs ? std::max(o.trainer.epochs, kMaxDefaultEpochs) : o.trainer.epochs;
  const bool checkpoint_past_last_epoch = o.trainer.checkpoint_every > most_epochs;
  // Options given (on the command line or in --config) that this run has no use for: a note each,
  // so that a value the user chose is never dropped unsaid.
  {
    const auto given = [&](const char* flag) {
      return cmd->count(flag) > 0
                 ? std::string(flag) + " " + cmd->get_option(flag)->results().back() +
                       (from_config.count(flag) ? " (in --config " + args->config + ")" : std::string())
                 : std::string();
    };
    std::vector<std::string> notes;
    if (!default_clip_note.empty()) notes.push_back(default_clip_note);
    if (o.kind != ModelKind::fm && !given("--factors").empty()) {
      notes.push_back(given("--factors") + " is ignored: factors belong to --model fm, and this model is linear");
    }
    for (const char* flag : {"--sync-every", "--workers"}) {
      if (o.trainer.mode != TrainMode::parallel && !given(flag).empty()) {
        notes.push_back(given(flag) + " is ignored: it applies to --mode parallel, and this run's mode is exact");
      }
    }
    if (o.trainer.schedule != ScheduleKind::inverse_time && !given("--decay").empty()) {
      notes.push_back(given("--decay") + " is ignored: it is the rate of --schedule inverse, and this run's "
                      "schedule is " + args->schedule);
    }
    if (o.optimizer.kind != OptimizerKind::momentum && o.optimizer.kind != OptimizerKind::nesterov &&
        !given("--momentum").empty()) {
      notes.push_back(given("--momentum") + " is ignored: it applies to --optimizer momentum and nesterov, and "
                      "this run's optimizer is " + args->optimizer);
    }
    if (o.trainer.checkpoint_every == 0 && !given("--checkpoint").empty()) {
      notes.push_back(given("--checkpoint") + " is ignored: no checkpoints are written without --checkpoint-every N");
    }
    if (checkpoint_past_last_epoch) {
      notes.push_back(given("--checkpoint-every") + " writes no checkpoint: it exceeds " +
                      (o.default_epochs ? std::to_string(most_epochs) + ", the most epochs a run without --epochs takes"
                                        : given("--epochs") + ", the run's last epoch"));
    }
    if (args->valid.empty() && o.valid_fraction == 0) {
      const std::string none = "this run has no validation set (--valid-fraction 0 and no --valid)";
      if (!given("--metric").empty()) {
        notes.push_back(given("--metric") + " is ignored: " + none + ", so no validation metric is computed "
                        "(early stopping, with --patience, watches the training loss)");
      }
      if (o.trainer.patience > 0 && !given("--patience").empty()) {
        notes.push_back(given("--patience") + " counts epochs without improvement of the training loss: " + none);
      }
      if (!given("--stop-margin").empty()) {
        notes.push_back(given("--stop-margin") + " is ignored: " + none + ", and it compares validation metrics");
      }
    }
    print_notes(std::cerr, "train: note: ", notes);
  }
  if (!o.resume_path.empty()) check_resume_split(cmd, o);
  if (!o.init_model.empty()) check_warm_start(o, args->data);
  const DeviceContext ctx = DeviceContext::select(args->device);
  const TrainReport report = train_table(ctx, args->data, args->out, o);
  if (log_file) {
    log.close();
    if (log.fail()) throw Error("--metrics-log: " + args->metrics_log + ": cannot write the log");
    log_file->commit();
  }
  print_notes(std::cerr, "train: note: ", report.notes);
  // Checkpoint epochs never reached (not said before training): early stopping ended the run first,
  // or the default epochs for this training set were fewer.
  const std::int32_t last_epoch = report.outcome.history.empty() ? 0 : report.outcome.history.back().epoch;
  if (o.trainer.checkpoint_every > last_epoch && !checkpoint_past_last_epoch) {
    std::cerr << "train: note: --checkpoint-every " << o.trainer.checkpoint_every
              << " wrote no checkpoint: the run ended at epoch " << last_epoch << " of at most " << report.max_epochs
              << (last_epoch < report.max_epochs ? " (early stopping: --patience or --stop-margin)"
                                                 : " (the default for this training set: give --epochs for more)")
              << "\n";
  }
  // The rate as written (0.01), not float's nearest double (0.009999999776482582).
  const auto float_as_written = [](float v) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    return std::strtod(std::string(text, end).c_str(), nullptr);
  };
  nlohmann::json summary = {{"model", args->out},
                            {"device", ctx.description()},
                            {"train_rows", report.train_rows},
                            {"valid_rows", report.valid_rows},
                            {"batch", report.batch},
                            {"lr", float_as_written(report.learning_rate)},
                            {"optimizer", optimizer_name(report.optimizer)},
                            {"max_epochs", report.max_epochs},
                            {"epochs_run", report.outcome.history.size()},
                            {"best_epoch", report.outcome.best_epoch},
                            // The epoch after which --cooldown's decay began; null: none.
                            {"cooldown_after_epoch", report.outcome.cooldown_after_epoch > 0
                                                         ? nlohmann::json(report.outcome.cooldown_after_epoch)
                                                         : nlohmann::json(nullptr)},
                            {"metric", report.outcome.metric},
                            {"valid", metrics_json(report.best_valid)},
                            {"seconds", report.seconds}};
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& [stage, seconds] : report.stage_seconds) stages[stage] = seconds;
  summary["stage_seconds"] = stages;
  if (args->dedup) summary["duplicates_removed"] = report.duplicates;
  summary["streamed"] = report.streamed;
  // The saved model's training after the epoch was chosen (--refit): null when it is the kept
  // epoch's.
  summary["refit"] = report.refit_rows > 0 ? nlohmann::json{{"rows", report.refit_rows},
                                                            {"epochs", report.refit_epochs},
                                                            {"train_loss", report.refit_train_loss}}
                                           : nlohmann::json(nullptr);
  // The starting model's validation metrics (--init-model), beside `valid`: null when none.
  summary["init_model_valid"] = report.init_model_valid.values.empty()
                                    ? nlohmann::json(nullptr)
                                    : metrics_json(report.init_model_valid);
  std::cout << summary.dump() << "\n";
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model by minibatch gradient descent and save it");
  auto args = std::make_shared<TrainArgs>();
  TrainTableOptions& o = args->options;
  o.trainer.learning_rate = 0.01f;
  o.optimizer.l2 = 1e-5f;
  cmd->add_option("data", args->data, "Training data, HDF5 (any layout)")->required();
  cmd->add_option("--config", args->config, kConfigHelp);
  cmd->add_option("--task", args->task, "regression, binary or multiclass (required)")
      ->check(CLI::IsMember({"regression", "binary", "multiclass"}));
  cmd->add_option("--out", args->out, "Model file to write (HDF5; required)");
  add_whole_number_option(cmd, "--checkpoint-every", o.trainer.checkpoint_every,
                          "Write a checkpoint every N epochs (0 = never)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--checkpoint", args->checkpoint,
                  "Checkpoint path (default: --out with .checkpoint.h5 for its extension); {epoch} in it is "
                  "replaced by the epoch, else each checkpoint replaces the last");
  cmd->add_option("--resume", args->resume,
                  "Continue from this checkpoint (same data and options): weights, optimizer state, shuffles and "
                  "learning rates continue as in an uninterrupted run");
  cmd->add_option("--model", args->model, "linear or fm (factorization machine)")
      ->capture_default_str()
      ->check(CLI::IsMember({"linear", "fm"}));
  add_whole_number_option(cmd, "--factors", o.factors, "FM factors per feature")
      ->capture_default_str()
      ->check(at_least(1));
  add_whole_number_option(
      cmd, "--epochs", o.trainer.epochs,
      "Maximum epochs (not given: 20, or more for a training set of fewer than 200 steps an "
      "epoch, up to 4000 steps and 200 epochs; the summary's max_epochs says how many)")
      ->capture_default_str()
      ->check(at_least(1));
  add_whole_number_option(
      cmd, "--batch", o.trainer.batch,
      "Minibatch rows (default: 256, or fewer for a training set under 8192 rows, so that an "
      "epoch takes at least 32 steps)")
      ->check(at_least(1));
  cmd->add_option("--optimizer", args->optimizer,
                  "sgd, momentum, nesterov, adagrad, adam or adamw (not given: adam, or sgd over "
                  "wide dense data: 64 or "
                  "more dense features and at most 30 training rows each, 48 for an fm)")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "momentum", "nesterov", "adagrad", "adam", "adamw"}));
  cmd->add_option("--lr", o.trainer.learning_rate,
                  "Learning rate (not given: 0.003 for an fm with a hashed categorical column, whose rare "
                  "buckets a higher rate overfits)")
      ->capture_default_str();
  cmd->add_option("--schedule", args->schedule, "constant, inverse (inverse-time decay) or cosine")
      ->capture_default_str()
      ->check(CLI::IsMember({"constant", "inverse", "cosine"}));
  cmd->add_option("--decay", o.trainer.decay,
                  "--schedule inverse: the rate is lr / (1 + decay * step) (default: 1 / the steps per epoch, so "
                  "lr / (1 + epochs done))");
  add_whole_number_option(cmd, "--warmup", o.trainer.warmup_steps, "Linear warmup steps")
      ->capture_default_str();
  cmd->add_option("--momentum", o.optimizer.momentum, "Momentum (momentum, nesterov)")->capture_default_str();
  cmd->add_option("--l1", o.optimizer.l1, "L1 penalty (proximal)")->capture_default_str();
  cmd->add_option("--l2", o.optimizer.l2, "L2 penalty (adamw: decoupled weight decay)")->capture_default_str();
  cmd->add_option("--clip-grad", o.optimizer.clip_norm, "Clip each batch gradient to this L2 norm (0 = off)")
      ->capture_default_str();
  cmd->add_option("--sparse-updates", args->sparse_updates,
                  "lazy (a step updates the categorical slots and hashed crosses its batch holds) or dense "
                  "(every weight at every step: l2 and moment decay reach absent slots too; slower for large tables)")
      ->capture_default_str()
      ->check(CLI::IsMember({"lazy", "dense"}));
  cmd->add_option("--huber-delta", args->huber_delta,
                  "Regression: Huber loss, quadratic for residuals up to this size in the label's units (with "
                  "--target-transform, in the transformed label's: log(y) or log(1 + y)), linear beyond "
                  "(default: squared loss)");
  cmd->add_option("--target-transform", args->target_transform,
                  "Regression: fit log(y) (log; labels > 0) or log(1 + y) (log1p; labels > -1) and predict exp or "
                  "expm1 of the fit, in the label's units: for skewed positive labels (prices, counts, durations); "
                  "unless --clip is given, numeric columns are then clipped to their 0.1% and 99.9% training "
                  "quantiles (default: none, or --init-model's)")
      ->check(CLI::IsMember({"none", "log", "log1p"}));
  add_whole_number_option(cmd, "--seed", o.trainer.seed,
                          "Seed of shuffling, the split and initialization")
      ->capture_default_str();
  // "auto", the default, can be given too (--help shows it as the default value): on the command
  // line it overrides a --config file's fraction.
  cmd->add_option("--valid-fraction", args->valid_fraction,
                  "Held-out fraction (stratified; 0 = none; auto: 0.2, but at most 10000 rows until 5% is more)")
      ->check(CLI::Validator(
          [](std::string& input) -> std::string {
            char* end = nullptr;
            std::strtod(input.c_str(), &end);
            if (input == "auto" || (!input.empty() && end != input.c_str() && *end == '\0')) return {};
            return "'" + input + "' is not a number or auto";
          },
          ""))
      ->type_name("FLOAT")
      ->capture_default_str();
  cmd->add_option("--valid", args->valid, "A separate validation file");
  cmd->add_option("--refit", args->refit,
                  "yes: once the rows held out by --valid-fraction have chosen the epoch, train "
                  "again from the start "
                  "on the training and held-out rows together for that many epochs, and save that "
                  "model (its stored "
                  "validation metrics stay the chosen epoch's); auto: a linear model, when "
                  "--valid-fraction is at least 0.1 (tables up to 100,000 rows at the automatic "
                  "fraction) and the training rows fit the memory budget beside a copy of every row; no: save the "
                  "chosen epoch's model")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  cmd->add_option("--metric", args->metric, "Early-stopping metric (default: the task's first)");
  add_whole_number_option(
      cmd, "--patience", o.trainer.patience,
      "Epochs without improvement before stopping (not given: 20, or 0 without a validation set; 0 = never; "
      "--stop-margin may stop sooner; an epoch whose training loss is above 1.1x the lowest so far does not "
      "count)")
      ->capture_default_str();
  add_whole_number_option(
      cmd, "--cooldown", o.trainer.cooldown_epochs,
      "When --patience runs out, decay the rate from where the schedule has it to zero over this many "
      "more epochs, then stop, keeping the best epoch of all (0 = stop at once)")
      ->capture_default_str();
  cmd->add_option("--stop-margin", o.stop_margin,
                  "Stop also after 3 epochs in a row whose validation metric is worse than its best by more than "
                  "this fraction of the constant model's (log-loss: the class shares' entropy; rmse: the label's "
                  "standard deviation); the best epoch is kept (0 = never)")
      ->capture_default_str();
  cmd->add_option("--positive", args->positive,
                  "Binary: the positive label (default: the second in sorted order)")
      ->check(non_empty("a label of the label column"));
  cmd->add_option("--weight", args->weight, "Sample-weight column")
      ->check(non_empty("a column name"));
  cmd->add_option("--class-weight", args->class_weight, "balanced: weight classes by n / (K * n_class)")
      ->check(CLI::IsMember({"balanced"}));
  cmd->add_option("--mode", args->mode,
                  "exact (sequential minibatch steps) or parallel (local SGD: workers average every "
                  "--sync-every steps)")
      ->capture_default_str()
      ->check(CLI::IsMember({"exact", "parallel"}));
  add_whole_number_option(cmd, "--sync-every", o.trainer.sync_every,
                          "parallel: local steps between weight averages")
      ->capture_default_str();
  add_whole_number_option(
      cmd, "--workers", o.trainer.workers,
      "parallel: workers, each with its own copy of the weights (CPU: threads; GPU: thread blocks; "
      "0 = the device's choice)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--metrics-log", args->metrics_log, "Write one JSON line of metrics per epoch here (when training succeeds; stderr shows each epoch as it ends)");
  cmd->add_flag("--dedup", args->dedup, "Remove exact duplicate rows first");
  cmd->add_option("--group", args->group, "Group (columnar), pandas key or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  add_whole_number_option(cmd, "--block-rows", args->block_rows, "Rows per block read")
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  cmd->add_flag("--stream", o.stream,
                "Stream the training rows window by window (automatic when prepared they exceed the memory budget)");
  add_whole_number_option(cmd, "--window-rows", o.window_rows,
                          "Streaming: file rows per window (default: as many as two windows of prepared rows fit "
                          "--memory-budget-mb, at most 1048576; rounded up to whole read blocks)");
  cmd->add_option("--memory-budget-mb", args->memory_budget_mb,
                  "Prepared training rows above this many MB are streamed (default: a quarter of RAM; "
                  "on a GPU at most half its free memory)");
  cmd->add_option("--init-model", o.init_model,
                  "Retrain: warm-start from this earlier model (same task, label, classes and model)");
  cmd->add_flag("--refit-prep", o.refit_prep,
                "With --init-model: fit the preparation on this data (default: keep the earlier model's)");
  add_preparation_options(cmd, args->preparation);
  // The label is what the model learns to predict here, not a column passed through as in prepare.
  cmd->get_option("--label")->description("Label column: what the model predicts (required)");
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    const std::set<std::string> from_config =
        args->config.empty() ? std::set<std::string>() : apply_config_file(cmd, args->config);
    try {
      run_train(cmd, args, from_config);
    } catch (const InputError& e) {
      // Thrown again as the same type (UsageError: exit 2, InputError: 1), naming the config file.
      const std::string origin = config_origin(e.what(), from_config, args->config);
      if (origin.empty()) throw;
      if (dynamic_cast<const UsageError*>(&e) != nullptr) throw UsageError(origin + e.what());
      throw InputError(origin + e.what());
    }
  });
}

}  // namespace lathe::cli
