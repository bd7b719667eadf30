"""dtorch.utils.cpp_extension on a GPU: the seed's nvcc-built example runs (built by load and by setup.py with
CUDAExtension); load_inline with CUDA sources launches on dtorch's current stream and checks its inputs."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dtorch
from dtorch.utils.cpp_extension import load_inline

pytestmark = pytest.mark.cuda

CUDA_SOURCE = r"""
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

template <typename scalar_t>
__global__ void scale_kernel(const scalar_t* x, scalar_t* out, scalar_t alpha, int64_t n) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) out[i] = alpha * x[i];
}

torch::Tensor scale(torch::Tensor x, double alpha) {
  TORCH_CHECK(x.is_cuda(), "scale: expected a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x.device());
  x = x.contiguous();
  auto out = torch::empty_like(x);
  const int64_t n = x.numel();
  const int threads = 256;
  const int blocks = static_cast<int>((n + threads - 1) / threads);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scale", [&] {
    scale_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), static_cast<scalar_t>(alpha), n);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
"""


@pytest.fixture
def gpu():
    if not dtorch.cuda.is_available():
        pytest.skip("no CUDA device (cupy + NVIDIA GPU)")


def test_seed_example_runs(gpu, tmp_path):
    path = pathlib.Path(__file__).with_name("cpp_extension_seed.py")
    spec = importlib.util.spec_from_file_location("cpp_extension_seed", path)
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    seed.run(build_directory=tmp_path)


def test_load_inline_cuda_on_current_stream(gpu, tmp_path):
    ext = load_inline("dtorch_test_cuda_scale", "torch::Tensor scale(torch::Tensor x, double alpha);",
                      cuda_sources=CUDA_SOURCE, functions=["scale"], build_directory=tmp_path)
    for dtype in (dtorch.float32, dtorch.float64):
        x = dtorch.randn(3, 1000, device="cuda", dtype=dtype)
        out = ext.scale(x.t(), 0.5)  # a non-contiguous input: contiguous() in C++
        assert out.device == x.device and out.dtype == dtype and out.shape == (1000, 3)
        np.testing.assert_allclose(out.cpu().numpy(), 0.5 * x.t().cpu().numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="scale: expected a CUDA tensor"):
        ext.scale(dtorch.zeros(3), 1.0)
    with pytest.raises(NotImplementedError, match="\"scale\" not implemented for 'Int'"):
        ext.scale(dtorch.zeros(3, device="cuda", dtype=dtorch.int32), 1.0)


def test_setup_py_cuda_extension(gpu, tmp_path):
    seed = pathlib.Path(__file__).resolve().parents[1] / "utils" / "cpp_ext" / "custom_op.cu"
    (tmp_path / "custom_op.cu").write_text(seed.read_text())
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        from setuptools import setup
        from dtorch.utils.cpp_extension import BuildExtension, CUDAExtension
        setup(name="custom_op", ext_modules=[CUDAExtension("custom_op", ["custom_op.cu"],
                                                           extra_compile_args={"cxx": [], "nvcc": ["-O3"]})],
              cmdclass={"build_ext": BuildExtension})
    """))
    repo = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    check = ("import dtorch, numpy as np, custom_op; a = dtorch.randn(100003, device='cuda'); "
             "b = dtorch.randn(100003, device='cuda'); c = custom_op.add(a, b); "
             "np.testing.assert_array_equal(c.cpu().numpy(), (a + b).cpu().numpy()); print('ok', c.device)")
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.stdout.strip() == "ok cuda:0", run.stdout + run.stderr
