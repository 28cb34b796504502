#include "io/synth.h"
#include "runtime/error.h"
namespace lathe {
SynthReport write_synthetic(const std::filesystem::path&, const SynthOptions&) {
  throw Error("write_synthetic: not implemented yet");
}
}  // namespace lathe
