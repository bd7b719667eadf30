"""The seed's CUDA extension as a user runs it: nvcc builds custom_op.cu (``#include <torch/extension.h>``, a
``__global__`` kernel, a host function, PYBIND11_MODULE), then ``custom_op.add(a, b)`` on CUDA tensors equals a + b.
tests/cuda_check.sh runs this file; tests/cuda/test_cpp_extension_cuda.py calls ``run``."""
from __future__ import annotations

import pathlib

import numpy as np

import dtorch as torch
from dtorch.utils.cpp_extension import load

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "utils" / "cpp_ext" / "custom_op.cu"


def run(build_directory=None, n: int = 1_000_003) -> None:
    custom_op = load(name="custom_op", sources=[str(SOURCE)], extra_cuda_cflags=["-O3"],
                     build_directory=build_directory)
    a = torch.randn(n, device="cuda")
    b = torch.randn(n, device="cuda")
    c = custom_op.add(a, b)
    assert type(c) is torch.Tensor and c.device == a.device and c.dtype == torch.float32 and c.shape == a.shape
    np.testing.assert_array_equal(c.cpu().numpy(), (a + b).cpu().numpy())


if __name__ == "__main__":
    run()
    print("cpp_extension: the seed's custom_op.add(a, b) equals a + b on the GPU")
