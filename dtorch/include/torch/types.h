// torch/types.h: the Tensor API without the Python module machinery (what load_inline's CUDA sources include).
#pragma once
#include <dtorch_ext/tensor.h>
