// The scoring of blocks of rows by a loaded model, the part of lathe::Scorer (include/lathe/scorer.h)
// that predicts, for Lathe's own commands, which hold the model loaded and the device chosen:
// lathe::Scorer (`lathe score`) wraps a block's predictions in Scores, and predict_table
// (io/evaluate_table.h: `lathe eval`, `lathe drift`, `lathe report --eval`) writes each block's into
// the predictions of the whole file, so that both predict every row alike and refuse an infinite
// value in the same words, with memory for one block rather than the prepared table.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "io/table_reader.h"
#include "lathe/scorer.h"
#include "models/model.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/preparation.h"
#include "runtime/trainer.h"

namespace lathe {

// A model's fitted preparation bound to the columns of one input (a file's or a batch's schema, in
// its own order), made by BlockScorer::bind. Refers to the model's preparation. Move-only.
struct BoundInput {
  // Held by pointer: `tiles` refers to it, and it must not move when the BoundInput does.
  std::unique_ptr<const BoundPreparation> bound;
  std::unique_ptr<TilePreparation> tiles;  // the CPU transform of *bound, tile by tile
  std::int64_t columns = 0;                // the input's columns: those of each block
  std::string source;                      // names the input in messages (a file name)
};

class BlockScorer {
 public:
  // `model` (loaded: load_model) on `ctx`: the model's parameters are set on a model of the
  // device's kind once. Refers to `model`, which must outlive the BlockScorer. InputError when the
  // model's class labels do not match its outputs (a corrupt file).
  BlockScorer(const DeviceContext& ctx, const ModelFile& model);
  BlockScorer(const BlockScorer&) = delete;
  BlockScorer& operator=(const BlockScorer&) = delete;

  const ModelFile& model() const { return *model_; }
  const DeviceContext& context() const { return ctx_; }
  std::int32_t outputs() const { return shape_.outputs; }  // predictions per row
  const std::vector<ModelInput>& inputs() const { return inputs_; }  // model_inputs (io/model_inputs.h)

  // Checks `columns` against the model's inputs (check_model_inputs, naming `source` and the
  // model's path: InputError for an input missing or retyped), then binds the preparation to them.
  BoundInput bind(const std::vector<ColumnInfo>& columns, const std::string& source) const;

  // The predictions of a block of rows into `predictions` (block.rows x outputs() floats, as
  // predict gives them, runtime/trainer.h: regression value, binary P(positive), multiclass
  // probabilities row by row). The block is in TableReader::read_block's layout (column-major
  // float32, NaN missing, categorical codes as floats) with the columns `input` was bound to; only
  // the columns the binding reads need hold values. `first_row` (0-based) is the block's first row
  // within its source, for messages. An infinite value that the model cannot score
  // (scores_infinite_values, io/infinite_values.h) is an InputError (throw_infinite_value) once the
  // block is predicted: the first of the model's numeric inputs, in their order, that has one, at
  // its first row. When `missing` is given (one count per numeric input of the preparation), each
  // input's missing (NaN) values in the block are added to it. `alongside`, when given, runs once
  // on one of the scoring threads (CPU) or on a host thread (GPU) while the block is scored, and an
  // exception from it is rethrown after: as score_block's (io/scoring_input.h). Error for a block whose column
  // count is not the input's, or an input bound by another BlockScorer. Not thread-safe: it reuses
  // scratch buffers, so that block after block allocates nothing.
  void predict(const BoundInput& input, const ColumnBlockView& block, std::int64_t first_row,
               std::span<float> predictions, std::vector<std::int64_t>* missing = nullptr,
               const std::function<void()>& alongside = {});

 private:
  const ModelFile* model_;
  DeviceContext ctx_;
  ModelShape shape_;
  std::unique_ptr<Model> net_;
  PredictionLink link_;
  std::vector<ModelInput> inputs_;
  // Scratch reused from block to block.
  PreparedBlock prepared_;                   // GPU: the block's prepared rows
  std::vector<PreparedBlock> tile_prepared_;  // CPU: one prepared tile per OpenMP thread
  std::vector<std::int64_t> tile_missing_, tile_first_infinite_;  // per tile and numeric input
};

}  // namespace lathe
