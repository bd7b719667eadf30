// at::cuda::getCurrentCUDAStream(): CuPy's current stream, so kernels launched on it order with dtorch's work.
#pragma once
#include <c10/cuda/CUDAException.h>

namespace at {
namespace cuda {
class CUDAStream {
 public:
  explicit CUDAStream(cudaStream_t s) : stream_(s) {}
  cudaStream_t stream() const { return stream_; }
  operator cudaStream_t() const { return stream_; }

 private:
  cudaStream_t stream_;
};

inline CUDAStream getCurrentCUDAStream(int device_index = -1) {
  namespace py = pybind11;
  (void)device_index;
  auto ptr = at::detail::dtorch_attr("cupy.cuda", "get_current_stream")().attr("ptr").cast<uintptr_t>();
  return CUDAStream(reinterpret_cast<cudaStream_t>(ptr));
}
}  // namespace cuda
}  // namespace at
