// C10_CUDA_CHECK / C10_CUDA_KERNEL_LAUNCH_CHECK: a CUDA error becomes a RuntimeError naming it.
#pragma once
#include <cuda_runtime_api.h>
#include <torch/types.h>

#define C10_CUDA_CHECK(EXPR)                                                                           \
  do {                                                                                                 \
    const cudaError_t _err = (EXPR);                                                                   \
    TORCH_CHECK(_err == cudaSuccess, "CUDA error: ", cudaGetErrorString(_err), " (", #EXPR, ")");      \
  } while (0)
#define C10_CUDA_KERNEL_LAUNCH_CHECK() C10_CUDA_CHECK(cudaGetLastError())
