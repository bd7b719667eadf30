// dtorch's <torch/extension.h>: torch::Tensor over dtorch tensors, TORCH_CHECK, AT_DISPATCH_*, and pybind11
// (with STL casters) so PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) binds functions on dtorch tensors.
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/types.h>
