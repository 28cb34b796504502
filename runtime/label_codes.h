// Distinct labels (text) and their codes 0, 1, 2, ... in the order they were first added: the
// labels in one vector (a label's code is its position), found through a LabelTable
// (runtime/label_table.h). How the record reader turns a string column into category codes, and how
// the CSV importer collects and codes its columns' labels. Each label is held once: a node-based
// map from label to code held a second copy of it in a node of its own, some 100 bytes a label in
// all, and on a column of millions of ids its nodes and allocations were half the time spent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/label_table.h"

namespace lathe {

class LabelCodes {
 public:
  static std::uint64_t hash(std::string_view label) { return LabelTable::hash(label); }

  // The code of `label` (whose hash() is h), or -1 when it was never added. Thread-safe (it only
  // reads).
  std::int64_t find(std::string_view label, std::uint64_t h) const {
    return table_.find(label, h, label_of());
  }
  std::int64_t find(std::string_view label) const { return find(label, hash(label)); }

  // The code of `label` (hash h), added as the next code when it is new (`added` then true).
  std::int64_t add(std::string_view label, std::uint64_t h, bool& added) {
    const std::int64_t code = table_.find_or_add(label, h, label_of(), added);
    if (added) {
      make_room();
      labels_.emplace_back(label);
    }
    return code;
  }
  std::int64_t add(std::string_view label) {
    bool added = false;
    return add(label, hash(label), added);
  }
  // Every label of `from` added, moved rather than copied; `from` is left empty.
  void merge(LabelCodes& from) {
    for (std::string& label : from.labels_) {
      bool added = false;
      table_.find_or_add(label, hash(label), label_of(), added);
      if (added) {
        make_room();
        labels_.push_back(std::move(label));
      }
    }
    from = LabelCodes();
  }

  // The most labels that may be added (the rows a column has): the labels' vector then grows
  // eightfold up to it (else as a vector does), so that each new label is written into a new
  // buffer fewer times (on a VM that hands freed memory back to its host, writing memory for the
  // first time costs about 2 s a GB).
  void expect_at_most(std::int64_t labels) {
    most_labels_ = static_cast<std::size_t>(std::max<std::int64_t>(labels, 0));
  }
  void reserve(std::size_t labels) { labels_.reserve(labels); }

  std::size_t size() const { return labels_.size(); }
  // The labels by code.
  const std::vector<std::string>& labels() const { return labels_; }
  // The labels by code, moved out; nothing is left (find() finds nothing).
  std::vector<std::string> release() {
    table_.clear();
    return std::move(labels_);
  }

  // LabelTable::candidate: the code of the label of hash h when it was added (compare it to be
  // sure: see label_is), else -1 or another label's code.
  std::int64_t candidate(std::uint64_t h) const { return table_.candidate(h); }
  // Whether label `code` (one of the codes) is `label`.
  bool label_is(std::int64_t code, std::string_view label) const {
    return same_label_text(labels_[static_cast<std::size_t>(code)], label);
  }
  // Hints that label `code` (one of the codes) is coming: the whole record of it (a 32-byte string
  // in a vector aligned to 16 bytes straddles two cache lines every other label).
  void prefetch_code(std::int64_t code) const {
    const std::string* record = labels_.data() + code;
    __builtin_prefetch(record);
    __builtin_prefetch(reinterpret_cast<const char*>(record + 1) - 1);
  }

  // Hints that a find() or candidate() of a label of hash `h` is coming: its entry. A table of a
  // million labels is far larger than the cache.
  void prefetch_slot(std::uint64_t h) const { table_.prefetch(h); }

 private:
  struct LabelOf {
    const std::vector<std::string>* labels;
    std::string_view operator()(std::int64_t code) const {
      return (*labels)[static_cast<std::size_t>(code)];
    }
  };
  LabelOf label_of() const { return {&labels_}; }
  void make_room() {
    if (most_labels_ == kUnbounded) return;
    if (labels_.size() == labels_.capacity() && labels_.size() < most_labels_) {
      labels_.reserve(std::min(most_labels_, std::max<std::size_t>(1024, 8 * labels_.capacity())));
    }
  }

  std::vector<std::string> labels_;
  LabelTable table_;
  static constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();
  std::size_t most_labels_ = kUnbounded;
};

}  // namespace lathe
