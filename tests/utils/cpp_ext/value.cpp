// A tiny extension whose result comes from an included header: the rebuild and two-process tests edit them.
#include <torch/extension.h>
#include "value.h"

int value() { return VALUE * FACTOR; }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("value", &value); }
