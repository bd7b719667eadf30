"""dtorch.utils: data loading, hooks, C++/CUDA extensions."""
