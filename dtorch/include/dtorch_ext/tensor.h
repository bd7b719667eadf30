// dtorch's <torch/extension.h>, part 2: at::Tensor over a dtorch tensor, the factories, and pybind11's caster.
// A Tensor holds a reference to the Python dtorch tensor and reads its array's pointer, shape and strides once
// (numpy through the buffer/array API, CuPy through __cuda_array_interface__): no copy either way. New tensors
// are allocated by calling dtorch (dtorch.empty/zeros/ones), so results are ordinary dtorch tensors on the
// requested device. Tensors hold Python references: copy and destroy them with the GIL held.
#pragma once

#include <dtorch_ext/core.h>
#include <pybind11/numpy.h>

namespace at {
using c10::ArrayRef;
using c10::Device;
using c10::DeviceType;
using c10::BFloat16;
using c10::Half;
using c10::IntArrayRef;
using c10::ScalarType;
using c10::TensorOptions;

namespace detail {
namespace py = pybind11;

// Borrowed for the process's lifetime (never destroyed: no Python calls at exit).
inline py::object& dtorch_attr(const char* module, const char* name) {
  static std::vector<std::pair<std::string, py::object*>> cache;
  std::string key = std::string(module) + "." + name;
  for (auto& kv : cache)
    if (kv.first == key) return *kv.second;
  auto* obj = new py::object(py::module_::import(module).attr(name));
  cache.emplace_back(key, obj);
  return *obj;
}

inline ScalarType scalar_type_of(const py::dtype& dt) {
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  switch (kind) {
    case 'f': return size == 4 ? ScalarType::Float : size == 8 ? ScalarType::Double
                   : size == 2 ? ScalarType::Half : ScalarType::Undefined;
    case 'i': return size == 8 ? ScalarType::Long : size == 4 ? ScalarType::Int
                   : size == 2 ? ScalarType::Short : size == 1 ? ScalarType::Char : ScalarType::Undefined;
    case 'u': return size == 1 ? ScalarType::Byte : ScalarType::Undefined;
    case 'b': return ScalarType::Bool;
    case 'V':  // ml_dtypes' bfloat16 is a numpy "void" kind
      return size == 2 && std::string(py::str(dt.attr("name"))) == "bfloat16" ? ScalarType::BFloat16
                                                                             : ScalarType::Undefined;
    default: return ScalarType::Undefined;
  }
}

inline const char* dtorch_dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Byte: return "uint8";
    case ScalarType::Char: return "int8";
    case ScalarType::Short: return "int16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    case ScalarType::Half: return "float16";
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Bool: return "bool";
    case ScalarType::BFloat16: return "bfloat16";
    default: throw c10::TypeError("dtorch has no dtype for this ScalarType");
  }
}
}  // namespace detail

class Tensor {
 public:
  Tensor() = default;
  // Wraps a dtorch tensor (a Python object whose _data is a numpy or CuPy array).
  explicit Tensor(pybind11::object obj) : obj_(std::move(obj)) { read_array(); }

  bool defined() const { return static_cast<bool>(obj_); }
  const pybind11::object& py() const { return obj_; }

  void* data_ptr() const { return ptr_; }
  template <typename T>
  T* data_ptr() const {
    constexpr ScalarType want = c10::CppTypeToScalarType<T>::value;
    TORCH_CHECK(want == dtype_, "expected scalar type ", want, " but found ", dtype_);
    return static_cast<T*>(ptr_);
  }
  template <typename T>
  T* mutable_data_ptr() const { return data_ptr<T>(); }
  template <typename T>
  const T* const_data_ptr() const { return data_ptr<T>(); }

  int64_t dim() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t ndimension() const { return dim(); }
  int64_t numel() const { return numel_; }
  IntArrayRef sizes() const { return sizes_; }
  IntArrayRef strides() const { return strides_; }
  int64_t size(int64_t d) const { return sizes_[wrap(d)]; }
  int64_t stride(int64_t d) const { return strides_[wrap(d)]; }
  size_t element_size() const { return c10::elementSize(dtype_); }
  size_t itemsize() const { return element_size(); }
  size_t nbytes() const { return static_cast<size_t>(numel_) * element_size(); }
  ScalarType scalar_type() const { return dtype_; }
  ScalarType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int get_device() const { return device_.is_cuda() ? device_.index() : -1; }
  bool is_cuda() const { return device_.is_cuda(); }
  bool is_cpu() const { return device_.is_cpu(); }
  TensorOptions options() const { return TensorOptions(dtype_).device(device_); }
  bool requires_grad() const { return obj_.attr("requires_grad").cast<bool>(); }

  bool is_contiguous() const {  // torch's rule: strides of size-1 dimensions do not count
    int64_t expected = 1;
    for (int64_t d = dim() - 1; d >= 0; --d) {
      if (sizes_[d] == 1) continue;
      if (strides_[d] != expected) return numel_ == 0;
      expected *= sizes_[d];
    }
    return true;
  }
  Tensor contiguous() const { return is_contiguous() ? *this : Tensor(obj_.attr("contiguous")()); }
  Tensor to(ScalarType t) const {
    return t == dtype_ ? *this : Tensor(obj_.attr("to")(detail::dtorch_attr("dtorch", detail::dtorch_dtype_name(t))));
  }
  Tensor to(Device d) const { return d == device_ ? *this : Tensor(obj_.attr("to")(d.str())); }
  Tensor clone() const { return Tensor(obj_.attr("clone")()); }
  Tensor detach() const { return Tensor(obj_.attr("detach")()); }
  Tensor& zero_() { obj_.attr("zero_")(); return *this; }
  Tensor view(IntArrayRef shape) const { return Tensor(obj_.attr("view")(pybind11::tuple(pybind11::cast(shape.vec())))); }
  Tensor reshape(IntArrayRef shape) const {
    return Tensor(obj_.attr("reshape")(pybind11::tuple(pybind11::cast(shape.vec()))));
  }

 private:
  size_t wrap(int64_t d) const {
    const int64_t n = dim();
    TORCH_CHECK_INDEX(d >= -n && d < n, "Dimension out of range (expected to be in range of [", -n, ", ", n - 1,
                      "], but got ", d, ")");
    return static_cast<size_t>(d < 0 ? d + n : d);
  }

  void read_array() {
    namespace py = pybind11;
    py::object arr = obj_.attr("_data");
    if (py::isinstance<py::array>(arr)) {
      auto a = py::reinterpret_borrow<py::array>(arr);
      ptr_ = const_cast<void*>(a.data());
      fill_layout(a.ndim(), [&](py::ssize_t i) { return a.shape(i); },
                  [&](py::ssize_t i) { return a.strides(i); }, a.dtype());
      device_ = Device(DeviceType::CPU);
      return;
    }
    py::dict cai = arr.attr("__cuda_array_interface__");
    ptr_ = reinterpret_cast<void*>(cai["data"].cast<py::tuple>()[0].cast<uintptr_t>());
    auto shape = cai["shape"].cast<py::tuple>();
    py::object st = cai["strides"];
    py::dtype dt = arr.attr("dtype");
    std::vector<int64_t> bytes(shape.size());
    int64_t run = static_cast<int64_t>(dt.itemsize());
    for (py::ssize_t i = static_cast<py::ssize_t>(shape.size()) - 1; i >= 0; --i) {
      bytes[i] = st.is_none() ? run : st.cast<py::tuple>()[i].cast<int64_t>();
      run *= shape[i].cast<int64_t>();
    }
    fill_layout(static_cast<py::ssize_t>(shape.size()), [&](py::ssize_t i) { return shape[i].cast<int64_t>(); },
                [&](py::ssize_t i) { return bytes[i]; }, dt);
    device_ = Device(DeviceType::CUDA, arr.attr("device").attr("id").cast<int>());
  }

  template <typename Shape, typename Strides>
  void fill_layout(pybind11::ssize_t nd, Shape shape, Strides byte_strides, const pybind11::dtype& dt) {
    dtype_ = detail::scalar_type_of(dt);
    TORCH_CHECK_TYPE(dtype_ != ScalarType::Undefined, "dtorch extension: unsupported dtype ",
                     std::string(pybind11::str(dt)));
    const int64_t item = static_cast<int64_t>(dt.itemsize());
    sizes_.resize(nd);
    strides_.resize(nd);
    numel_ = 1;
    for (pybind11::ssize_t i = 0; i < nd; ++i) {
      sizes_[i] = static_cast<int64_t>(shape(i));
      strides_[i] = static_cast<int64_t>(byte_strides(i)) / item;
      numel_ *= sizes_[i];
    }
  }

  pybind11::object obj_;
  void* ptr_ = nullptr;
  std::vector<int64_t> sizes_, strides_;
  int64_t numel_ = 0;
  ScalarType dtype_ = ScalarType::Undefined;
  Device device_;
};

namespace detail {
inline pybind11::dtype numpy_dtype(ScalarType t) {
  static pybind11::object* cache[16] = {};
  const int i = static_cast<int>(t);
  TORCH_CHECK_TYPE(i >= 0 && i < 16, "dtorch has no dtype for this ScalarType");
  if (!cache[i]) cache[i] = new pybind11::object(pybind11::dtype(std::string(dtorch_dtype_name(t))));
  return pybind11::reinterpret_borrow<pybind11::dtype>(*cache[i]);
}

// New tensors are dtorch's: a CPU array (numpy's allocator, as np.empty) wrapped by dtorch.tensor._make, the
// path every dtorch op takes; CUDA tensors and tensors that require grad through the public factory.
inline Tensor allocate(const char* factory, IntArrayRef size, const TensorOptions& options) {
  namespace py = pybind11;
  using namespace pybind11::literals;
  if (options.device().is_cpu() && !options.requires_grad() && std::strcmp(factory, "empty") == 0) {
    static py::object* make = new py::object(py::module_::import("dtorch.tensor").attr("_make"));
    py::array arr(numpy_dtype(options.dtype()), std::vector<py::ssize_t>(size.begin(), size.end()));
    return Tensor((*make)(arr));
  }
  py::tuple shape = py::cast(size.vec());
  py::object t = dtorch_attr("dtorch", factory)(shape, "dtype"_a = dtorch_attr("dtorch", dtorch_dtype_name(options.dtype())),
                                                "device"_a = options.device().str(),
                                                "requires_grad"_a = options.requires_grad());
  return Tensor(std::move(t));
}
inline TensorOptions like(const Tensor& t, const TensorOptions& o) {
  TensorOptions r = o.has_dtype() ? o : o.dtype(t.scalar_type());
  return r.has_device() ? r : r.device(t.device());
}
}  // namespace detail

inline Tensor empty(IntArrayRef size, const TensorOptions& o = {}) { return detail::allocate("empty", size, o); }
// CPU zeros: dtorch.empty (heap memory dtorch's allocator keeps) cleared here; numpy's calloc would map fresh
// pages for a large tensor on every call and fault them in while the kernel writes
inline Tensor zeros(IntArrayRef size, const TensorOptions& o = {}) {
  if (o.device().is_cuda() || o.requires_grad()) return detail::allocate("zeros", size, o);
  Tensor t = detail::allocate("empty", size, o);
  if (t.numel() > 0) std::memset(t.data_ptr(), 0, t.nbytes());
  return t;
}
inline Tensor ones(IntArrayRef size, const TensorOptions& o = {}) { return detail::allocate("ones", size, o); }
inline Tensor empty_like(const Tensor& t, const TensorOptions& o = {}) { return empty(t.sizes(), detail::like(t, o)); }
inline Tensor zeros_like(const Tensor& t, const TensorOptions& o = {}) { return zeros(t.sizes(), detail::like(t, o)); }
inline Tensor ones_like(const Tensor& t, const TensorOptions& o = {}) { return ones(t.sizes(), detail::like(t, o)); }

using c10::dtype;
using c10::device;
using c10::requires_grad;
constexpr ScalarType kByte = ScalarType::Byte, kUInt8 = ScalarType::Byte, kChar = ScalarType::Char,
                     kInt8 = ScalarType::Char, kShort = ScalarType::Short, kInt16 = ScalarType::Short,
                     kInt = ScalarType::Int, kInt32 = ScalarType::Int, kLong = ScalarType::Long,
                     kInt64 = ScalarType::Long, kHalf = ScalarType::Half, kFloat16 = ScalarType::Half,
                     kFloat = ScalarType::Float, kFloat32 = ScalarType::Float, kDouble = ScalarType::Double,
                     kFloat64 = ScalarType::Double, kBool = ScalarType::Bool,
                     kBFloat16 = ScalarType::BFloat16;
using c10::kCPU;
using c10::kCUDA;
}  // namespace at

namespace torch {
using namespace at;  // torch::Tensor, torch::zeros_like, torch::kFloat32, ...
// torch::wrap_pybind_function (load_inline's error handling) is the function itself: errors already map to Python.
template <typename F>
F wrap_pybind_function(F f) { return f; }
}  // namespace torch

namespace pybind11 {
namespace detail {
template <>
struct type_caster<at::Tensor> {
  PYBIND11_TYPE_CASTER(at::Tensor, const_name("dtorch.Tensor"));

  bool load(handle src, bool) {
    static object* tensor_type = new object(module_::import("dtorch.tensor").attr("Tensor"));
    if (!isinstance(src, *tensor_type)) return false;
    value = at::Tensor(reinterpret_borrow<object>(src));
    return true;
  }
  static handle cast(const at::Tensor& t, return_value_policy, handle) {
    if (!t.defined()) return none().release();
    return t.py().inc_ref();
  }
};
}  // namespace detail
}  // namespace pybind11
