// Scoring rows held in memory with a trained model, through Lathe's public header only.
//
//   score_rows MODEL.h5
//
// Builds a batch of four rows for whatever columns the model needs (numeric values around 0, one
// of them missing; categorical columns' labels from the training vocabulary, a missing one and a
// label the model never saw), scores it on the CPU, prints the notes on stderr and one line per
// row: the regression value, or each class's probability and the predicted class. Lathe's errors
// are lathe::Error subclasses
// (<lathe/error.h>, which <lathe/scorer.h> includes): InputError for input that is wrong.
#include <lathe/error.h>
#include <lathe/scorer.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: score_rows MODEL.h5\n");
    return 2;
  }
  try {
    lathe::Scorer scorer(argv[1], "cpu");
    constexpr std::size_t kRows = 4;

    // The batch owns nothing: the values live here, in one vector per column. A categorical column
    // is its rows' labels, matched to the training vocabulary by label; "" is missing.
    std::vector<std::vector<double>> numeric;
    std::vector<std::vector<std::string>> labels;
    numeric.reserve(scorer.inputs().size());
    labels.reserve(scorer.inputs().size());
    std::vector<lathe::BatchColumn> batch;
    for (const lathe::ModelInput& input : scorer.inputs()) {  // in the training file's column order
      if (input.categorical) {
        const std::vector<std::string>& seen = input.labels;  // empty when the column was hashed
        const std::string first = seen.empty() ? "a" : seen[0],
                          second = seen.size() > 1 ? seen[1] : first;
        labels.push_back({first, second, "", "a label never seen in training"});
        batch.push_back(lathe::BatchColumn::categorical_labels(input.name, labels.back()));
      } else {
        numeric.push_back({-1.0, 0.0, 1.0, std::nan("")});  // the last is missing: imputed as trained
        batch.push_back(lathe::BatchColumn::numeric(input.name, numeric.back()));
      }
    }

    lathe::ScoringSummary summary;
    std::vector<std::string> notes;  // columns the model does not use, labels it never saw, ...
    const lathe::Scores scores = scorer.score(batch, &summary, &notes);
    for (const std::string& note : notes)
      std::fprintf(stderr, "score_rows: note: %s\n", note.c_str());
    std::printf("lathe %s\n", lathe::version());
    std::printf("model %s: %s, label '%s', %zu input columns, on %s\n", argv[1],
                lathe::scoring_task_name(scorer.task()), scorer.label().c_str(), scorer.inputs().size(),
                scorer.device_description().c_str());
    for (std::int64_t r = 0; r < scores.rows; ++r) {
      if (scores.task == lathe::ScoringTask::regression) {
        std::printf("row %lld: prediction %.9g\n", static_cast<long long>(r), scores.value[static_cast<std::size_t>(r)]);
        continue;
      }
      std::printf("row %lld:", static_cast<long long>(r));
      for (std::int32_t k = 0; k < scores.classes; ++k) {
        std::printf(" P(%s) %.6f", scorer.classes()[static_cast<std::size_t>(k)].c_str(),
                    scores.probability[static_cast<std::size_t>(r * scores.classes + k)]);
      }
      std::printf(" -> %s\n", scorer.classes()[static_cast<std::size_t>(scores.predicted_class[static_cast<std::size_t>(r)])].c_str());
    }
    for (const auto& [column, count] : summary.imputed) std::printf("imputed %lld missing values of '%s'\n", static_cast<long long>(count), column.c_str());
    for (const auto& [column, count] : summary.unknown_categories) std::printf("%lld unseen labels in '%s'\n", static_cast<long long>(count), column.c_str());
    for (const auto& [column, count] : summary.missing_categories)
      std::printf("%lld missing labels in '%s'\n", static_cast<long long>(count), column.c_str());
    std::printf("scored %lld rows\n", static_cast<long long>(scores.rows));
    // The example doubles as a test (ctest examples.score_rows): every row scored, the missing
    // numeric values imputed and counted.
    if (scores.rows != static_cast<std::int64_t>(kRows)) return 1;
    if (!numeric.empty() && summary.imputed.size() != numeric.size()) return 1;
    if (summary.missing_categories.size() != labels.size()) return 1;
  } catch (const lathe::InputError& e) {  // a missing or damaged model file, a batch it cannot score
    std::fprintf(stderr, "score_rows: input error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // lathe::Error (HDF5, CUDA), std::bad_alloc
    std::fprintf(stderr, "score_rows: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
