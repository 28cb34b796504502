#include "io/retraining.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <system_error>

#include "io/model_inputs.h"
#include "io/run_options.h"
#include "kernels/prepare_formulas.h"
#include "runtime/name_lists.h"

namespace lathe {

namespace {

// A model's parent record (ModelFile::parent, JSON text) as an object whose own parent is an object
// too, all the way up. Files written before held the grandparent as JSON text inside the JSON,
// whose quotes were escaped again at every generation: a record that doubled in size with each
// retraining.
nlohmann::json parent_chain(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return text;  // not ours: kept as it was, as a string
  if (j.contains("parent") && j["parent"].is_string()) {
    const std::string up = j["parent"].get<std::string>();
    if (up.empty()) {
      j.erase("parent");
    } else {
      j["parent"] = parent_chain(up);
    }
  }
  return j;
}

}  // namespace

std::vector<std::string> carried_weights_notes(
    const ModelFile& init, const std::filesystem::path& init_model, const FittedPreparation& fitted,
    const CarryReport& carry, const std::filesystem::path& data, const std::string& options_json) {
  std::vector<std::string> notes;
  notes.push_back("--init-model: carried the weights of " + std::to_string(carry.carried) +
                  " of its " + std::to_string(init.preparation.expanded_features()) +
                  " features into the refitted preparation, converted to its centers and scales");
  // Its columns that are no features of the same kind here (a month without a column, or one
  // read as another type): their weights are the ones the count above leaves out, named.
  {
    const auto has = [](const auto& encodings, const std::string& name) {
      return std::any_of(encodings.begin(), encodings.end(),
                         [&](const auto& e) { return e.name == name; });
    };
    std::string absent, retyped;
    std::size_t absent_count = 0;  // counted: a column name may hold a comma
    std::string absent_name;       // the last of them
    bool absent_numeric = false;
    const auto add = [](std::string& list, const std::string& item) {
      list += (list.empty() ? "" : ", ") + item;
    };
    // The parent's columns of one kind (`same` its encodings here, `other` those of the other
    // kind) that are no features of that kind here.
    const auto not_kept = [&](const auto& was, const auto& same, const auto& other, bool numeric) {
      for (const auto& e : was) {
        if (has(same, e.name)) continue;
        if (has(other, e.name)) {
          add(retyped, "'" + e.name +
                           (numeric ? "' (numeric there, categorical here)"
                                    : "' (categorical there, numeric here)"));
          continue;
        }
        add(absent, "'" + e.name + "'");
        ++absent_count;
        absent_name = e.name;
        absent_numeric = numeric;
      }
    };
    not_kept(init.preparation.numeric, fitted.numeric, fitted.categorical, true);
    not_kept(init.preparation.categorical, fitted.categorical, fitted.numeric, false);
    const std::string parent = "--init-model " + init_model.string() + ": ";
    // The other way round: columns the refitted preparation reads that OLD's did not, an id its
    // run dropped above all (--drop is this run's own, not inherited, as --cross is): they
    // become features starting from zero, which a retraining meant to continue OLD should hear.
    std::vector<std::string> old_inputs;
    for (const ModelInput& in : preparation_inputs(init.preparation)) old_inputs.push_back(in.name);
    const std::vector<std::string> old_dropped =
        split_name_list(given_option(init.options_json, "drop"));
    const auto listed = [](const std::vector<std::string>& names, const std::string& name) {
      return std::find(names.begin(), names.end(), name) != names.end();
    };
    std::string dropped_there, unread_there, keep_out = given_option(options_json, "drop");
    std::size_t unread_count = 0;
    std::string unread_name;  // the last of them
    for (const ModelInput& in : preparation_inputs(fitted)) {
      if (listed(old_inputs, in.name)) continue;
      const bool dropped = listed(old_dropped, in.name);
      add(dropped ? dropped_there : unread_there, "'" + in.name + "'");
      if (!dropped) ++unread_count, unread_name = in.name;
      keep_out += (keep_out.empty() ? "" : ",") + in.name;
    }
    // One column gone and one new of the same kind, which its data never had: most likely a
    // column renamed between the two datasets, said as one note with the two ways on (its old
    // name carries its weights; --drop trains without it).
    const bool renamed =
        absent_count == 1 && unread_count == 1 && dropped_there.empty() &&
        (absent_numeric ? has(fitted.numeric, unread_name) : has(fitted.categorical, unread_name));
    if (renamed) {
      notes.push_back(parent + data.string() + " has no column '" + absent_name +
                      "' but a new one, '" + unread_name + "' (renamed?): the weights of '" +
                      absent_name + "' were not carried, and '" + unread_name +
                      "' starts from zero; to carry them, give the column its old name '" +
                      absent_name + "' in the data; to train without it, --drop " + keep_out);
    } else if (!absent.empty()) {
      notes.push_back(parent + "the weights of its column" + (absent_count == 1 ? " " : "s ") +
                      absent + " were not carried: no feature of this run (absent from " +
                      data.string() + ", or dropped)");
    }
    if (!retyped.empty()) {
      notes.push_back(parent + "the weights of " + retyped + " were not carried: another type in " +
                      data.string() + ", whose features start from zero");
    }
    if (!renamed && (!dropped_there.empty() || !unread_there.empty())) {
      std::string which = dropped_there.empty() ? "" : dropped_there + " (its run's --drop)";
      if (!unread_there.empty()) {
        which += (which.empty() ? "" : ", ") + unread_there +
                 " (absent from its data, or no feature there)";
      }
      notes.push_back(
          parent + "its preparation did not read " + which +
          "; this run's refitted "
          "preparation reads them as features of the new model, starting from zero: --drop " +
          keep_out + " keeps them out");
    }
  }
  // A categorical cross's weights belong to hash buckets, which the count above does not
  // cover at another bucket count (moved pair by pair) nor for a cross this run does not make.
  for (const SparseGroup& old_group : init.preparation.sparse) {
    if (old_group.kind != SparseKind::categorical_cross) continue;
    const auto same =
        std::find_if(fitted.sparse.begin(), fitted.sparse.end(), [&](const SparseGroup& g) {
          return g.kind == SparseKind::categorical_cross && g.name == old_group.name;
        });
    const auto moved =
        std::find_if(carry.remapped_crosses.begin(), carry.remapped_crosses.end(),
                     [&](const RemappedCross& c) { return c.name == old_group.name; });
    if (same == fitted.sparse.end()) {
      // The same two columns crossed the other way round hash each pair into other buckets.
      const auto side = [&](std::int32_t index, bool bins) {
        return bins ? init.preparation.numeric.at(static_cast<std::size_t>(index)).name + "#bins"
                    : init.preparation.categorical.at(static_cast<std::size_t>(index)).name;
      };
      const std::string reversed =
          side(old_group.b, old_group.b_bins) + "*" + side(old_group.a, old_group.a_bins);
      const bool made_reversed =
          std::any_of(fitted.sparse.begin(), fitted.sparse.end(), [&](const SparseGroup& g) {
            return g.kind == SparseKind::categorical_cross && g.name == reversed;
          });
      notes.push_back(
          "--init-model: the weights of its cross " + old_group.name + " were not carried: " +
          (made_reversed ? "this run crosses its columns the other way round (--cross " + reversed +
                               "), which hashes each pair into another bucket; --cross " +
                               old_group.name + " carries them"
                         : std::string("this run's --cross does not make it")));
    } else if (same->a_bins != old_group.a_bins || same->b_bins != old_group.b_bins) {
      // The same name, other sides: a column's bins in one preparation, a categorical column
      // named like them in the other.
      notes.push_back(
          "--init-model: the weights of its cross " + old_group.name +
          " were not carried: its sides are other columns in this run (a numeric column's "
          "bins in one model, a categorical column of that name in the other)");
    } else if (moved != carry.remapped_crosses.end() && !moved->moved) {
      notes.push_back("--init-model: the weights of its cross " + old_group.name + " (" +
                      std::to_string(moved->old_buckets) +
                      " buckets) were not carried into this run's " +
                      std::to_string(moved->new_buckets) + " buckets (--hash-buckets): its " +
                      std::to_string(moved->pairs) + " pairs of categories are more than the " +
                      std::to_string(kMaxRemappedCrossPairs) +
                      " that are moved pair by pair; they start at zero");
    } else if (moved != carry.remapped_crosses.end()) {
      // A cross of bins also moves at one bucket count, when a side's bins were refitted.
      const bool bins = same->a_bins || same->b_bins;
      const std::string into =
          moved->old_buckets == moved->new_buckets && bins
              ? "this run's refitted bins"
              : "this run's " + std::to_string(moved->new_buckets) + " buckets (--hash-buckets)";
      std::string note = "--init-model: the weights of its cross " + old_group.name + " (" +
                         std::to_string(moved->old_buckets) + " buckets) were moved to " + into +
                         " pair by pair: " + std::to_string(moved->pairs) + " pairs of " +
                         (bins ? "bins and categories" : "categories") + " both preparations know";
      if (moved->shared_buckets > 0) {
        note += "; " + std::to_string(moved->shared_buckets) +
                " new buckets are shared by pairs with different earlier weights and hold their "
                "average" +
                (moved->weighted_by_counts
                     ? " (weighted by the categories' counts in its training rows)"
                     : "") +
                ", inexact for those pairs";
      }
      notes.push_back(note);
    }
  }
  // Its numeric crosses, per-category slopes and missing indicators that this run does not
  // make (this run's --cross and --missing-indicators say which, not OLD's): their weights are
  // left out of the count above too, named. A numeric cross is the same product either way round.
  {
    const std::vector<std::string> new_dense = fitted.dense_names();
    const auto made = [&](const std::string& name) {
      return std::find(new_dense.begin(), new_dense.end(), name) != new_dense.end();
    };
    const auto add = [](std::string& list, const std::string& item) {
      list += (list.empty() ? "" : ", ") + item;
    };
    std::string crosses, indicators;
    std::size_t cross_count = 0, indicator_count = 0;
    for (const auto& [a, b] : init.preparation.numeric_crosses) {
      const std::string& name_a = init.preparation.numeric.at(static_cast<std::size_t>(a)).name;
      const std::string& name_b = init.preparation.numeric.at(static_cast<std::size_t>(b)).name;
      if (made(name_a + "*" + name_b) || made(name_b + "*" + name_a)) continue;
      add(crosses, name_a + "*" + name_b);
      ++cross_count;
    }
    for (const SparseGroup& old_group : init.preparation.sparse) {
      if (old_group.kind != SparseKind::slope) continue;
      // (A slope's `a` is its numeric column, `b` its categorical one, however --cross spelled it.)
      const std::string& old_numeric =
          init.preparation.numeric.at(static_cast<std::size_t>(old_group.a)).name;
      const std::string& old_categorical =
          init.preparation.categorical.at(static_cast<std::size_t>(old_group.b)).name;
      if (std::any_of(fitted.sparse.begin(), fitted.sparse.end(), [&](const SparseGroup& g) {
            return g.kind == SparseKind::slope &&
                   fitted.numeric.at(static_cast<std::size_t>(g.a)).name == old_numeric &&
                   fitted.categorical.at(static_cast<std::size_t>(g.b)).name == old_categorical;
          })) {
        continue;
      }
      add(crosses, old_group.name);
      ++cross_count;
    }
    for (const std::int32_t i : init.preparation.indicators) {
      const std::string name =
          init.preparation.numeric.at(static_cast<std::size_t>(i)).name + "_missing";
      if (made(name)) continue;
      add(indicators, "'" + name + "'");
      ++indicator_count;
    }
    if (cross_count > 0) {
      notes.push_back("--init-model: the weights of its cross" +
                      std::string(cross_count == 1 ? " " : "es ") + crosses +
                      " were not carried: this run's --cross does not make " +
                      (cross_count == 1 ? "it" : "them"));
    }
    if (indicator_count > 0) {
      notes.push_back(
          "--init-model: the weights of its missing indicator" +
          std::string(indicator_count == 1 ? " " : "s ") + indicators +
          " were not carried: this run has no such indicator (--missing-indicators makes one "
          "for each numeric column with missing values in this run's training rows)");
    }
  }
  // A column that changed between a vocabulary and buckets: its one-hot slots moved label by
  // label (RemappedColumn), its slopes start from zero.
  for (const RemappedColumn& c : carry.remapped_columns) {
    const auto form = [](bool hashed, std::int32_t slots) {
      return hashed ? "hashed into " + std::to_string(slots) + " buckets"
                    : "a vocabulary of " + std::to_string(slots) + " labels";
    };
    std::string note =
        "column '" + c.name + "' was " + form(c.was_hashed, c.old_slots) + " in --init-model " +
        init_model.string() + " and is " + form(c.now_hashed, c.new_slots) +
        " now (--max-categories and --category-buckets choose between a vocabulary and buckets): ";
    if (!c.moved) {
      note +=
          "its weights start from zero (the earlier model's profile has no labels to move its "
          "buckets by)";
    } else {
      note += "its weights moved label by label (" + std::to_string(c.labels) + " labels)";
      if (c.shared_slots > 0) {
        note +=
            "; " + std::to_string(c.shared_slots) +
            " buckets are shared by labels with different earlier weights and hold their average" +
            (c.weighted_by_counts ? " (weighted by the labels' counts in its training rows)" : "") +
            ", inexact for those labels";
      }
      for (const SparseGroup& g : fitted.sparse) {
        if (g.kind == SparseKind::slope &&
            fitted.categorical.at(static_cast<std::size_t>(g.b)).name == c.name) {
          note += "; the slopes of its cross " + g.name + " start from zero";
        }
      }
    }
    notes.push_back(note);
  }
  // Quantile bins: refitted on this data's quantiles they are other bins (moved bin by bin,
  // RemappedBins); a column binned by one run only has its bins' weights dropped or at zero. A
  // note each, listing the columns (--bins bins every numeric column).
  const auto bins_of = [](const FittedPreparation& f, const std::string& column) {
    return std::any_of(f.sparse.begin(), f.sparse.end(), [&](const SparseGroup& g) {
      return g.kind == SparseKind::bins &&
             f.numeric.at(static_cast<std::size_t>(g.a)).name == column;
    });
  };
  const auto add = [](std::string& list, const std::string& item) {
    list += (list.empty() ? "" : ", ") + item;
  };
  std::string dropped, gone, started, moved, one_bin;
  // (A bins group's `a` is a numeric column, as is a cross's side of bins; the other kinds' a
  // categorical one.)
  for (const SparseGroup& g : init.preparation.sparse) {
    if (g.kind != SparseKind::bins) continue;
    const std::string& column = init.preparation.numeric.at(static_cast<std::size_t>(g.a)).name;
    if (bins_of(fitted, column)) continue;
    const bool numeric = std::any_of(fitted.numeric.begin(), fitted.numeric.end(),
                                     [&](const NumericEncoding& n) { return n.name == column; });
    add(numeric ? dropped : gone, "'" + column + "'");
  }
  for (const SparseGroup& g : fitted.sparse) {
    if (g.kind != SparseKind::bins) continue;
    const std::string& column = fitted.numeric.at(static_cast<std::size_t>(g.a)).name;
    if (!bins_of(init.preparation, column)) add(started, "'" + column + "'");
  }
  for (const RemappedBins& b : carry.remapped_bins) {
    add(b.moved > 0 ? moved : one_bin, "'" + b.name + "' (" + std::to_string(b.old_bins) +
                                           " bins, now " + std::to_string(b.new_bins) + ")");
  }
  const std::string parent = "--init-model " + init_model.string() + ": ";
  if (!dropped.empty()) {
    notes.push_back(parent + "the weights of the quantile bins of " + dropped +
                    " were not carried: this run does not bin them (--bins)");
  }
  if (!gone.empty()) {
    notes.push_back(
        parent + "the weights of the quantile bins of " + gone +
        " were not carried: no longer a numeric feature here (dropped, absent or categorical)");
  }
  if (!started.empty()) {
    notes.push_back(parent + "it did not bin " + started +
                    ": the weights of these quantile bins start from zero");
  }
  if (!moved.empty()) {
    notes.push_back(
        parent + "the quantile bins of " + moved +
        " have other edges at this data's quantiles: each bin took the weights of the earlier "
        "bin that holds its middle (an end bin: the middle of its edge and this data's minimum or "
        "maximum), inexact for values whose earlier bin was another");
  }
  if (!one_bin.empty()) {
    notes.push_back(
        parent + "this data's values of " + one_bin +
        " fall in one bin (no edge), whose weight starts from zero; their missing values' bin "
        "carried");
  }
  if (carry.inexact_terms > 0) {
    notes.push_back(
        "--init-model: " + std::to_string(carry.inexact_terms) +
        " pairwise terms of the fm's numeric crosses could not be converted and were left out");
  }
  return notes;
}

std::string parent_record(const ModelFile& init, const std::filesystem::path& init_model,
                          bool refit_prep) {
  // The parent: where it was, a fingerprint of its parameters (FNV-1a then mix64 over their
  // bytes) to tell it from a later file at that path, and its own parent.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const std::vector<float>* v :
       {&init.parameters.weights, &init.parameters.bias, &init.parameters.factors}) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(v->data());
    for (std::size_t i = 0; i < v->size() * sizeof(float); ++i)
      h = (h ^ bytes[i]) * 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(mix64(h)));
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(init_model, ec);
  nlohmann::json parent{{"path", (ec ? init_model : absolute).string()},
                        {"parameters_fingerprint", hex},
                        {"refit_preparation", refit_prep}};
  if (!init.parent.empty()) parent["parent"] = parent_chain(init.parent);
  return parent.dump();
}

}  // namespace lathe
