// `lathe export MODEL.h5 --onnx OUT.onnx`: the model and its fitted preparation as one ONNX graph
// (io/onnx_export.h), checked with onnx::checker and written atomically.
#include <iostream>

#include "cli/commands.h"
#include "cli/output_paths.h"
#include "io/model_file.h"
#include "io/onnx_export.h"
#include "runtime/error.h"

namespace lathe::cli {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export a model with its preparation as one ONNX graph");
  struct Args {
    std::string model, onnx;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "Model file (HDF5, from lathe train)")->required();
  cmd->add_option(
         "--onnx", args->onnx,
         "ONNX file to write (IR 8, opset 17, ai.onnx.ml 2): one input per column (float32 [N,1], "
         "or "
         "the category label as string [N,1]); outputs prediction, or probability/probabilities "
         "and predicted_class")
      ->required();
  cmd->add_flag("--quiet", args->quiet, "Print nothing on success");
  cmd->callback([args, cmd] {
    refuse_empty_paths(*cmd, {"model", "--onnx"});
    const WrittenFile output{"--onnx", args->onnx, "the ONNX graph"};
    check_output_paths({output}, {{"the model file", args->model}});
    refuse_replacing_another_kind(output, ExistingFile::onnx_graph);  // an earlier graph only
    // The graph reads nothing of the training profile's labels (millions, for a model of ids).
    ModelLoadOptions load;
    load.profile_labels = false;
    const ModelFile model = load_model(args->model, nullptr, load);
    const OnnxExportSummary summary = export_onnx(model, args->model, args->onnx);
    if (args->quiet) return;
    if (model.trained_on_prepared) {
      std::cerr << "export: note: " << args->model << " was trained on data prepared by `lathe prepare` ("
                << model.trained_on_prepared->source
                << "): the graph's inputs are the prepared columns, and that preparation is not in the graph; "
                   "prepare the rows first (`lathe prepare RAW.h5 PREPARED.h5 --from "
                << args->model << "`)\n";
    }
    std::cout << "wrote " << args->onnx << " (" << summary.bytes << " bytes, " << summary.nodes
              << " nodes)\n";
    std::cout << "  inputs: ";
    for (std::size_t i = 0; i < summary.inputs.size(); ++i)
      std::cout << (i ? ", " : "") << summary.inputs[i];
    std::cout << "\n  outputs: ";
    for (std::size_t i = 0; i < summary.outputs.size(); ++i)
      std::cout << (i ? ", " : "") << summary.outputs[i];
    std::cout << "\n";
  });
}

}  // namespace lathe::cli
