// torch/python.h: the same API as <torch/extension.h> in dtorch.
#pragma once
#include <torch/extension.h>
