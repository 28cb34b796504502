// The CPU model (models/cpu_model.cpp), the reference implementation of models/model.h.
#pragma once

#include <memory>

#include "models/model.h"
#include "runtime/host_array.h"

namespace lathe {

// A model whose parameters are all zero; `shape` as checked_model_shape returns it. predict_only:
// without the optimizer's state and a step's scratch (make_prediction_model); it cannot train.
std::unique_ptr<Model> make_cpu_model(const ModelShape& shape, const OptimizerConfig& optimizer,
                                      bool predict_only = false);

// How many exact steps of `model` (one make_cpu_model made) ran on a plan made ahead on its second
// thread (a lazy step of sparse groups with a spare core: its batch gathered and its touched
// features found while the step before ran); 0 for another model. For tests and diagnostics.
std::int64_t steps_planned_ahead(const Model& model);

// How the exact steps of a CPU model run: in the model's thread alone; planned ahead on a second
// thread (lazy steps of sparse groups); on the OpenMP team (large steps). Local SGD's rounds run on
// the team or their workers one after another in the model's thread (`planned` runs them so).
// `automatic` (the default) times the ways open and runs the fastest (runtime/way_chooser.h: a
// busy machine makes every use of a second core slow). Same bits every way.
enum class CpuStepWay { automatic, alone, planned, team };
// Makes `model` (one make_cpu_model made; others are left alone) run its steps `way` where that
// way is open to them (else as `automatic` would without timing). For tests and diagnostics.
void set_cpu_step_way(Model& model, CpuStepWay way);

// The memory for the row-major rows a CPU model trains on (TrainingSet::dense_by_row, slot_by_row,
// value_by_row) over `sparse_groups` groups with `optimizer`. Huge pages where a step gathers its
// own random rows: it waits on each row's TLB miss as well as its cache miss (epochs of 800k dense
// rows took 25% less time with them). Plain pages where lazy steps are planned ahead on a second
// thread (make_cpu_model's planner gathers the rows, so the misses are not the step's): there huge
// pages saved nothing measurable over 5 epochs of 1.6M rows of 26 id columns, and fresh huge pages
// are slow to fault where the kernel runs under a host that takes freed memory back (0.4 GB/s here,
// against 2.5 GB/s for 4 KiB pages; 0.2 s of `lathe train` on those rows).
HostMemory cpu_training_rows_memory(std::int64_t sparse_groups, const OptimizerConfig& optimizer);

}  // namespace lathe
