// load_inline's C++ source in the tests: a + alpha * b and alpha * g, the forward and backward of a custom Function.
torch::Tensor add_scaled(torch::Tensor a, torch::Tensor b, double alpha) {
  TORCH_CHECK(a.sizes() == b.sizes(), "add_scaled: shape mismatch, ", a.sizes(), " vs ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "add_scaled: dtype mismatch");
  a = a.contiguous();
  b = b.contiguous();
  auto out = torch::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "add_scaled", [&] {
    const scalar_t* x = a.data_ptr<scalar_t>();
    const scalar_t* y = b.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t i = 0; i < a.numel(); ++i) o[i] = x[i] + static_cast<scalar_t>(alpha) * y[i];
  });
  return out;
}

torch::Tensor scale(torch::Tensor g, double alpha) {
  g = g.contiguous();
  auto out = torch::empty_like(g);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "scale", [&] {
    const scalar_t* x = g.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t i = 0; i < g.numel(); ++i) o[i] = static_cast<scalar_t>(alpha) * x[i];
  });
  return out;
}
