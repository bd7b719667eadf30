"""A custom CUDA op with dtorch.utils.cuda_extension.load_inline: out = a + alpha * b, with its backward."""
from __future__ import annotations

import dtorch
from dtorch.utils.cuda_extension import load_inline

SOURCE = r"""
extern "C" __global__ void add_scaled(const float* a, const float* b, float* out, float alpha, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + alpha * b[i];
}
extern "C" __global__ void scale(const float* g, float* out, float alpha, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) out[i] = alpha * g[i];
}
"""


def extension():
    return load_inline("add_scaled_example", SOURCE, functions=["add_scaled", "scale"])


class AddScaled(dtorch.autograd.Function):
    """a + alpha * b on contiguous float32 CUDA tensors of one shape."""

    @staticmethod
    def forward(ctx, a, b, alpha: float):
        ext = extension()
        out = dtorch.empty_like(a)
        ext.add_scaled(a, b, out, alpha, a.numel(), numel=a.numel())
        ctx.alpha = alpha
        return out

    @staticmethod
    def backward(ctx, g):
        ext = extension()
        g = g.contiguous()
        gb = dtorch.empty_like(g)
        ext.scale(g, gb, ctx.alpha, g.numel(), numel=g.numel())
        return g, gb, None


if __name__ == "__main__":
    a = dtorch.randn(1000, device="cuda", requires_grad=True)
    b = dtorch.randn(1000, device="cuda", requires_grad=True)
    AddScaled.apply(a, b, 0.5).sum().backward()
    print("grad of b (all 0.5):", b.grad[:4])
