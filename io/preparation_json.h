// A FittedPreparation as JSON text and back: stored in prepared files ("lathe_preparation") and in
// model files, so scoring applies exactly the transformation a model was trained on. Doubles are
// written with full precision, so the round trip is exact; +-inf clip bounds are written as null.
#pragma once

#include <string>

#include "runtime/preparation.h"

namespace lathe {

std::string preparation_to_json(const FittedPreparation& fitted);
// Throws InputError naming `context` (the file) when the text is not a valid preparation.
FittedPreparation preparation_from_json(const std::string& text, const std::string& context);

}  // namespace lathe
