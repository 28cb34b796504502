// `lathe`: the command line. Maps every exception to one message on stderr and an exit code:
// 0 success, 1 an error (bad input, failed computation), 2 a usage error, 3 a sticky CUDA error
// (and, from `lathe drift`, drift above the alert threshold: cli::ExitCode).
#include <hdf5.h>

#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "io/temporary_file.h"
#include "runtime/error.h"

int main(int argc, char** argv) {
  // No HDF5 clean-up at exit: every file is closed (and checked) by the code that wrote it, and a
  // file whose flush failed (a full disk) is left in a state that HDF5 1.10's atexit handler
  // crashes on (SIGSEGV in H5F__close_cb after the error was reported). Before any HDF5 call.
  H5dont_atexit();
  // SIGINT, SIGTERM and SIGHUP remove the partial outputs (their temporaries) before ending lathe.
  lathe::remove_temporaries_on_termination_signals();
  CLI::App app{"Lathe: machine learning on large tabular data, on NVIDIA GPUs", "lathe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lathe 0.1.0");
  lathe::cli::add_info_command(app);
  lathe::cli::add_import_command(app);
  lathe::cli::add_inspect_command(app);
  lathe::cli::add_synth_command(app);
  lathe::cli::add_prepare_command(app);
  lathe::cli::add_train_command(app);
  lathe::cli::add_eval_command(app);
  lathe::cli::add_bench_command(app);
  lathe::cli::add_score_command(app);
  lathe::cli::add_export_command(app);
  lathe::cli::add_drift_command(app);
  lathe::cli::add_report_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const lathe::cli::ExitCode& e) {
    return e.code;  // the command printed its result (`lathe drift`: 3 = drift found)
  } catch (const lathe::CudaError& e) {
    std::cerr << "lathe: error: " << lathe::name_final_paths(e.what()) << "\n";
    if (e.sticky()) {
      std::cerr << "lathe: the GPU is in an unrecoverable state; stopping\n";
      return 3;
    }
    return 1;
  } catch (const lathe::Hdf5Error& e) {
    std::cerr << "lathe: error: " << lathe::name_final_paths(e.what()) << "\n";
    // The failed call and its source line help whoever debugs Lathe, not the user reading the error.
    if (std::getenv("LATHE_DEBUG") != nullptr && !e.call_site().empty()) {
      std::cerr << "lathe: debug: the failed HDF5 call was " << e.call_site() << "\n";
    }
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lathe: error: " << lathe::name_final_paths(e.what()) << "\n";
    return 1;
  }
  return 0;
}
