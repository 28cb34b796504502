// A Lathe model file as one ONNX graph: the fitted preparation (imputation, clipping, scaling,
// missing indicators, quantile bins, categorical slots, numeric and categorical crosses, slopes)
// and the model (linear, logistic, softmax, factorization machine) with the task's link, so
// onnxruntime scores raw rows exactly as `lathe score` does. A quantile bin is taken from the raw
// input, compared in float with the model's float edges as bin_slot does, so it is the same bin.
//
// The graph (IR version 8; opsets ai.onnx 17 and ai.onnx.ml 2, what libonnx 1.12 checks):
//   inputs   one per column the preparation reads, named after the column, in the training
//            file's column order:
//              numeric      float32 [N, 1]; NaN is a missing value;
//              categorical  string [N, 1], the category label as in the CSV; "" is a missing
//                           value; a label not seen in training takes the model's unknown slot.
//   outputs  regression  prediction float32 [N] (original units);
//            binary      probability float32 [N] (P(positive class)), predicted_class string [N]
//                        (the positive label where probability > 0.5, else the negative label);
//            multiclass  probabilities float32 [N, K] (the model's class order), predicted_class
//                        string [N] (the most probable class, the first one on ties).
// The preparation runs in the same arithmetic as kernels/prepare_formulas.h (fill, clip and
// centering in double, rounded to float once; products of prepared floats), so prepared features
// are bit-identical; the model's float parameters are stored as float and cast to double (exact),
// and scores are summed in double (Lathe sums a linear classifier's in float, an fm's and a regression
// model's in double as here: predicted_scores, Model::predict_regression), so outputs agree with Lathe's to float rounding of
// its sums: a regression prediction relatively, also near zero; a probability relatively, except
// that near 0 the absolute rounding of Lathe's float logit shows as relative error of p.
//
// Not expressible in these opsets, and refused with an InputError naming the column: a hashed
// categorical column (more labels than --max-categories at training time: the label's FNV-1a hash
// needs the label's bytes, which no ONNX operator of these opsets exposes), a vocabulary holding
// the empty label (it would collide with the missing value), and a categorical x categorical cross
// whose slot table would exceed kMaxCrossTableEntries.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/model_file.h"

namespace lathe {

// The largest categorical x categorical cross exported: (slots of a) x (slots of b) slot pairs. The
// graph stores a cross's parameters per slot pair (the parameters of the pair's bucket, as float),
// not per hash bucket, so the file's size follows the vocabularies, not --hash-buckets; where
// pairs far outnumber buckets it stores the bucket rows and an int64 pair -> row table instead,
// whichever is smaller.
inline constexpr std::int64_t kMaxCrossTableEntries = std::int64_t{1} << 24;

struct OnnxExportSummary {
  std::vector<std::string> inputs;   // graph input names, in order
  std::vector<std::string> outputs;  // graph output names, in order
  std::int64_t nodes = 0;
  std::int64_t bytes = 0;  // size of the written file
};

// Builds the graph of `model` (read from `source`, named in messages), checks it with
// onnx::checker::check_model and writes it atomically to `out` (temporary name, then rename: on
// any error no file is left at `out` and an earlier file there is untouched). Throws InputError
// naming the feature that cannot be exported, Error when the checker rejects the graph or the
// file cannot be written.
OnnxExportSummary export_onnx(const ModelFile& model, const std::filesystem::path& source,
                              const std::filesystem::path& out);

}  // namespace lathe
