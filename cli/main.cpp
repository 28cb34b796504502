// `lathe`: the command line. Maps every exception to one message on stderr and an exit code:
// 0 success, 1 an error (bad input, failed computation), 2 a usage error (CLI11's parse errors and
// lathe::UsageError: the command line itself is wrong), 3 a sticky CUDA error (and, from
// `lathe drift`, drift above the alert threshold: cli::ExitCode).
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/build_commit.h"
#include "cli/commands.h"
#include "cli/openmp_spinning.h"
#include "io/temporary_file.h"
#include "lathe/scorer.h"  // lathe::version()
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/message_names.h"

namespace {

std::vector<const CLI::App*> all_subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

std::vector<CLI::App*> all_subcommands(CLI::App& app) {
  return app.get_subcommands([](CLI::App* sub) { return !sub->get_name().empty(); });
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : all_subcommands(app)) names.push_back(sub->get_name());
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The first word of the command line that names an option `command` does not have ("" when none
// does). Words after "--", and negative numbers (values), are not options.
std::string unknown_option(const CLI::App& command, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;
    if (word.size() < 2 || word[0] != '-') continue;
    if (word[1] != '-' && !std::isalpha(static_cast<unsigned char>(word[1]))) continue;  // -1, -.5
    const std::string name = word.substr(0, word.find('='));
    if (name == "--") continue;
    bool known = false;
    for (const CLI::App* app = &command; app != nullptr && !known; app = app->get_parent()) {
      known = app->get_option_no_throw(name) != nullptr;
    }
    if (!known) return name;
  }
  return {};
}

// CLI11's parse errors as one `lathe: error:` line; an unknown command lists the commands, an
// unknown option names the closest one. Exit code 2 (a usage error).
int usage_error(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  const CLI::App* command = &app;
  std::string path = "lathe";
  while (!command->get_subcommands().empty()) {
    command = command->get_subcommands().front();
    path += " " + command->get_name();
  }
  std::cerr << "lathe: error: ";
  if (command == &app) {
    // No command was recognised: the first word that is not an option was meant as one.
    for (int i = 1; i < argc; ++i) {
      const std::string word = argv[i];
      if (word.empty() || word[0] == '-') continue;
      std::cerr << "unknown command '" << word << "'";
      const std::string near = lathe::closest_name(word, command_names(app));
      if (!near.empty()) std::cerr << " (did you mean '" << near << "'?)";
      std::cerr << "; the commands are: " << joined(command_names(app)) << "\n";
      return 2;
    }
  }
  if (const std::string name = unknown_option(*command, argc, argv); !name.empty()) {
    std::cerr << "unknown option " << name << " for `" << path << "`";
    const std::string near = lathe::cli::suggested_option(*command, name);
    if (!near.empty()) std::cerr << " (did you mean " << near << "?)";
    std::cerr << "; see `" << path << " --help`\n";
    return 2;
  }
  if (command == &app) {
    std::cerr << "a command is required, one of: " << joined(command_names(app)) << "; see `lathe --help`\n";
    return 2;
  }
  std::cerr << lathe::cli::plain_parse_message(*command, e.what()) << "; see `" << path << " --help`\n";
  return 2;
}

// `--quiet` on any command also silences the note that no GPU is usable (runtime/device_context.h),
// however the flag is given (on the command line, or by `lathe train --config`).
void quiet_silences_device_notes(CLI::App& app) {
  for (CLI::App* sub : all_subcommands(app)) {
    if (CLI::Option* quiet = sub->get_option_no_throw("--quiet")) {
      quiet->each([](const std::string& value) {
        try {
          lathe::DeviceContext::set_quiet(CLI::detail::to_flag_value(value) > 0);
        } catch (const std::exception&) {
          // CLI11 itself refuses a value that is not a flag value.
        }
      });
    }
    quiet_silences_device_notes(*sub);
  }
}

// Opens /dev/null on each of stdin, stdout and stderr that is closed (`2>&-`, a supervisor that
// starts lathe without them), as coreutils do: otherwise the next file lathe opens takes that
// descriptor, and progress meant for stderr is written into an output file.
void open_closed_standard_streams() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    if (fd == 1) lathe::cli::stdout_was_closed = true;
    // The lowest free descriptor: `fd` itself, as those below it are open by now.
    const int opened = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (opened >= 0 && opened != fd) {
      ::dup2(opened, fd);
      ::close(opened);
    }
  }
}

// Whether LATHE_DEBUG asks for the lines meant for whoever debugs Lathe: set to anything but "" or
// "0". `LATHE_DEBUG=0`, as a switch is turned off, and `LATHE_DEBUG=` (an emptied variable) are off,
// as is leaving it unset.
bool debug_output_wanted() {
  const char* value = std::getenv("LATHE_DEBUG");
  return value != nullptr && std::strcmp(value, "") != 0 && std::strcmp(value, "0") != 0;
}

// Runs the command line; the exit code (see the top of this file).
int run(int argc, char** argv);

// The result lives on stdout (inspect, eval, drift, info, train's summary): when it could not be
// written (a full disk, `> /dev/full`), say so and fail, as coreutils do, instead of exiting 0
// with the result lost. `code` is the command's own exit code; a broken pipe ends lathe by SIGPIPE
// before this (io/temporary_file.h).
int check_stdout(int code) {
  errno = 0;
  std::cout.flush();
  const bool stream_failed = !std::cout.good();
  int error = errno;
  if (std::fflush(stdout) != 0) {
    error = errno;
  } else if (!stream_failed && !std::ferror(stdout)) {
    return code;
  }
  // A command that failed said why in its one line (`lathe score --out -` names stdout itself).
  if (code != 0 && code != 3) return code;
  if (error == 0) {
    // The write that failed was an earlier one (a result larger than stdio's buffer), whose errno
    // is gone: one more byte asks the system again. The output is cut short already.
    errno = 0;
    if (::write(STDOUT_FILENO, "\n", 1) < 0) error = errno;
  }
  std::cerr << "lathe: error: stdout: " << (error != 0 ? std::strerror(error) : "write error") << "\n";
  return code == 0 ? 1 : code;  // a failure's own code says more (drift's 3 still signals drift)
}

}  // namespace

int main(int argc, char** argv) {
  lathe::cli::bound_openmp_spinning(argv);
  open_closed_standard_streams();
  return check_stdout(run(argc, argv));
}

namespace {

int run(int argc, char** argv) {
  // No HDF5 clean-up at exit: every file is closed (and checked) by the code that wrote it, and a
  // file whose flush failed (a full disk) is left in a state that HDF5 1.10's atexit handler
  // crashes on (SIGSEGV in H5F__close_cb after the error was reported). Before any HDF5 call.
  H5dont_atexit();
  // With SIGXFSZ ignored, a write past `ulimit -f` fails with EFBIG and is reported like a full disk
  // (the file named, its temporary removed, exit 1) instead of the signal ending lathe at once with
  // its temporaries left behind.
  std::signal(SIGXFSZ, SIG_IGN);
  // SIGINT, SIGTERM, SIGHUP and SIGPIPE remove the partial outputs (their temporaries) before ending lathe.
  lathe::remove_temporaries_on_termination_signals();
  CLI::App app{"Lathe: machine learning on large tabular data, on NVIDIA GPUs", "lathe"};
  app.require_subcommand(1);
  // "lathe 0.1.0 (commit 0123456789ab)"; the commit left out when not built from a git checkout.
  const char* commit = lathe::cli::build_commit();
  app.set_version_flag("--version",
                       std::string("lathe ") + lathe::version() +
                           (commit != nullptr ? std::string(" (commit ") + commit + ")" : ""));
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
  quiet_silences_device_notes(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e, argc, argv);
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
    if (debug_output_wanted() && !e.call_site().empty()) {
      std::cerr << "lathe: debug: the failed HDF5 call was " << e.call_site() << "\n";
    }
    return 1;
  } catch (const lathe::UsageError& e) {
    std::cerr << "lathe: error: " << lathe::name_final_paths(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lathe: error: " << lathe::name_final_paths(e.what()) << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
