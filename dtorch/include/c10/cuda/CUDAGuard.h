// c10::cuda::CUDAGuard: makes a device current for a scope.
#pragma once
#include <c10/cuda/CUDAException.h>

namespace c10 {
namespace cuda {
class CUDAGuard {
 public:
  explicit CUDAGuard(c10::Device d) : CUDAGuard(d.index()) {}
  explicit CUDAGuard(int index) {
    C10_CUDA_CHECK(cudaGetDevice(&previous_));
    if (index >= 0 && index != previous_) C10_CUDA_CHECK(cudaSetDevice(index));
  }
  ~CUDAGuard() { cudaSetDevice(previous_); }
  CUDAGuard(const CUDAGuard&) = delete;
  CUDAGuard& operator=(const CUDAGuard&) = delete;

 private:
  int previous_ = 0;
};
using OptionalCUDAGuard = CUDAGuard;
}  // namespace cuda
}  // namespace c10
namespace at {
namespace cuda {
using c10::cuda::CUDAGuard;
using c10::cuda::OptionalCUDAGuard;
}  // namespace cuda
}  // namespace at
