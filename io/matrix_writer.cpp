#include "io/matrix_writer.h"
