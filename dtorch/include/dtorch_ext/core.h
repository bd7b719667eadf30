// dtorch's <torch/extension.h>, part 1: scalar types, devices, size lists, tensor options, checks, dispatch.
// Everything here is plain C++ (no Python); tensor.h builds the Tensor on it.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#if defined(__CUDACC__)
#define DTORCH_HOST_DEVICE __host__ __device__
#else
#define DTORCH_HOST_DEVICE
#endif

namespace c10 {

// torch's numbering, so values match at::ScalarType in messages and casts
enum class ScalarType : int8_t {
  Byte = 0, Char = 1, Short = 2, Int = 3, Long = 4, Half = 5, Float = 6, Double = 7, Bool = 11, BFloat16 = 15,
  Undefined = 127
};

inline const char* toString(ScalarType t) {
  switch (t) {
    case ScalarType::Byte: return "Byte";
    case ScalarType::Char: return "Char";
    case ScalarType::Short: return "Short";
    case ScalarType::Int: return "Int";
    case ScalarType::Long: return "Long";
    case ScalarType::Half: return "Half";
    case ScalarType::Float: return "Float";
    case ScalarType::Double: return "Double";
    case ScalarType::Bool: return "Bool";
    case ScalarType::BFloat16: return "BFloat16";
    default: return "Undefined";
  }
}

inline size_t elementSize(ScalarType t) {
  switch (t) {
    case ScalarType::Byte: case ScalarType::Char: case ScalarType::Bool: return 1;
    case ScalarType::Short: case ScalarType::Half: case ScalarType::BFloat16: return 2;
    case ScalarType::Int: case ScalarType::Float: return 4;
    case ScalarType::Long: case ScalarType::Double: return 8;
    default: return 0;
  }
}

inline std::ostream& operator<<(std::ostream& os, ScalarType t) { return os << toString(t); }

// IEEE half as 16 bits; arithmetic goes through float.
struct Half {
  uint16_t x = 0;
  Half() = default;
  DTORCH_HOST_DEVICE Half(float f) : x(from_float(f)) {}
  DTORCH_HOST_DEVICE operator float() const { return to_float(x); }

  DTORCH_HOST_DEVICE static uint16_t from_float(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000u, exp = (b >> 23) & 0xffu, man = b & 0x7fffffu;
    if (exp == 0xffu) return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0u));
    int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
    if (e <= 0) {
      if (e < -10) return static_cast<uint16_t>(sign);
      man |= 0x800000u;
      uint32_t shift = static_cast<uint32_t>(14 - e);
      uint32_t h = man >> shift, rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1);
      if (rem > half || (rem == half && (h & 1u))) ++h;
      return static_cast<uint16_t>(sign | h);
    }
    uint32_t h = (static_cast<uint32_t>(e) << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // round to nearest even (may carry into exp)
    return static_cast<uint16_t>(sign | h);
  }
  DTORCH_HOST_DEVICE static float to_float(uint16_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, b;
    if (exp == 0) {
      if (man == 0) {
        b = sign;
      } else {
        int e = -1;
        do { ++e; man <<= 1; } while (!(man & 0x400u));
        b = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
      }
    } else if (exp == 31) {
      b = sign | 0x7f800000u | (man << 13);
    } else {
      b = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
  }
};

// bfloat16 (dtorch's ml_dtypes.bfloat16): the top 16 bits of a float, rounded to nearest even.
struct BFloat16 {
  uint16_t x = 0;
  BFloat16() = default;
  DTORCH_HOST_DEVICE BFloat16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    x = (b & 0x7fffffffu) > 0x7f800000u ? static_cast<uint16_t>((b >> 16) | 0x40u)
                                        : static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  }
  DTORCH_HOST_DEVICE operator float() const {
    uint32_t b = static_cast<uint32_t>(x) << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
  }
};

template <typename T> struct CppTypeToScalarType { static constexpr ScalarType value = ScalarType::Undefined; };
#define DTORCH_CPP_TYPE(T, S) \
  template <> struct CppTypeToScalarType<T> { static constexpr ScalarType value = ScalarType::S; };
DTORCH_CPP_TYPE(uint8_t, Byte)
DTORCH_CPP_TYPE(int8_t, Char)
DTORCH_CPP_TYPE(int16_t, Short)
DTORCH_CPP_TYPE(int32_t, Int)
DTORCH_CPP_TYPE(int64_t, Long)
DTORCH_CPP_TYPE(Half, Half)
DTORCH_CPP_TYPE(float, Float)
DTORCH_CPP_TYPE(double, Double)
DTORCH_CPP_TYPE(bool, Bool)
DTORCH_CPP_TYPE(BFloat16, BFloat16)
#undef DTORCH_CPP_TYPE

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };
constexpr DeviceType kCPU = DeviceType::CPU;
constexpr DeviceType kCUDA = DeviceType::CUDA;

struct Device {
  Device(DeviceType type = DeviceType::CPU, int index = -1) : type_(type), index_(static_cast<int8_t>(index)) {}
  Device(const std::string& s) {  // "cpu", "cuda", "cuda:1"
    if (s.rfind("cuda", 0) == 0) {
      type_ = DeviceType::CUDA;
      index_ = static_cast<int8_t>(s.size() > 5 ? std::stoi(s.substr(5)) : -1);
    } else if (s == "cpu") {
      type_ = DeviceType::CPU;
    } else {
      throw std::runtime_error("Expected one of cpu, cuda device type at start of device string: " + s);
    }
  }
  DeviceType type() const { return type_; }
  int index() const { return index_; }
  bool has_index() const { return index_ >= 0; }
  bool is_cuda() const { return type_ == DeviceType::CUDA; }
  bool is_cpu() const { return type_ == DeviceType::CPU; }
  std::string str() const {
    if (type_ == DeviceType::CPU) return "cpu";
    return index_ >= 0 ? "cuda:" + std::to_string(index_) : "cuda";
  }
  bool operator==(const Device& o) const { return type_ == o.type_ && index_ == o.index_; }
  bool operator!=(const Device& o) const { return !(*this == o); }

 private:
  DeviceType type_;
  int8_t index_ = -1;
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

// A non-owning view of a list (torch's c10::ArrayRef): keep the list alive while it is used.
template <typename T>
class ArrayRef {
 public:
  ArrayRef() = default;
  ArrayRef(const T* data, size_t n) : data_(data), size_(n) {}
  ArrayRef(const std::vector<T>& v) : data_(v.data()), size_(v.size()) {}
  ArrayRef(const std::initializer_list<T>& l) : data_(l.begin()), size_(l.size()) {}
  ArrayRef(const T& one) : data_(&one), size_(1) {}
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](size_t i) const { return data_[i]; }
  const T& front() const { return data_[0]; }
  const T& back() const { return data_[size_ - 1]; }
  std::vector<T> vec() const { return std::vector<T>(data_, data_ + size_); }
  bool equals(ArrayRef o) const {
    if (size_ != o.size_) return false;
    for (size_t i = 0; i < size_; ++i)
      if (!(data_[i] == o.data_[i])) return false;
    return true;
  }
  bool operator==(ArrayRef o) const { return equals(o); }
  bool operator!=(ArrayRef o) const { return !equals(o); }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
};
using IntArrayRef = ArrayRef<int64_t>;

template <typename T>
std::ostream& operator<<(std::ostream& os, ArrayRef<T> a) {
  os << "[";
  for (size_t i = 0; i < a.size(); ++i) os << (i ? ", " : "") << a[i];
  return os << "]";
}

// dtype and device of a new tensor; unset fields are taken from the tensor a *_like factory copies.
class TensorOptions {
 public:
  TensorOptions() = default;
  TensorOptions(ScalarType t) { dtype_ = t; }
  TensorOptions(Device d) { device_ = d; has_device_ = true; }
  TensorOptions(DeviceType d) { device_ = Device(d); has_device_ = true; }
  TensorOptions dtype(ScalarType t) const { TensorOptions o = *this; o.dtype_ = t; return o; }
  TensorOptions device(Device d) const { TensorOptions o = *this; o.device_ = d; o.has_device_ = true; return o; }
  TensorOptions device(DeviceType t, int index = -1) const { return device(Device(t, index)); }
  TensorOptions device_index(int index) const { return device(Device(DeviceType::CUDA, index)); }
  TensorOptions requires_grad(bool r) const { TensorOptions o = *this; o.requires_grad_ = r; return o; }
  ScalarType dtype() const { return dtype_ == ScalarType::Undefined ? ScalarType::Float : dtype_; }
  Device device() const { return device_; }
  bool requires_grad() const { return requires_grad_; }
  bool has_dtype() const { return dtype_ != ScalarType::Undefined; }
  bool has_device() const { return has_device_; }

 private:
  ScalarType dtype_ = ScalarType::Undefined;
  Device device_;
  bool has_device_ = false;
  bool requires_grad_ = false;
};

inline TensorOptions dtype(ScalarType t) { return TensorOptions().dtype(t); }
inline TensorOptions device(Device d) { return TensorOptions().device(d); }
inline TensorOptions requires_grad(bool r = true) { return TensorOptions().requires_grad(r); }

// Errors: RuntimeError, ValueError, TypeError, IndexError, NotImplementedError in Python.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
#define DTORCH_PY_ERROR(NAME, PYEXC)                                                            \
  class NAME : public pybind11::builtin_exception {                                            \
   public:                                                                                      \
    using pybind11::builtin_exception::builtin_exception;                                      \
    void set_error() const override { PyErr_SetString(PYEXC, what()); }                        \
  };
DTORCH_PY_ERROR(ValueError, PyExc_ValueError)
DTORCH_PY_ERROR(TypeError, PyExc_TypeError)
DTORCH_PY_ERROR(IndexError, PyExc_IndexError)
DTORCH_PY_ERROR(NotImplementedError, PyExc_NotImplementedError)
#undef DTORCH_PY_ERROR

namespace detail {
inline void put(std::ostringstream&) {}
template <typename T, typename... R>
void put(std::ostringstream& s, const T& t, const R&... rest) {
  s << t;
  put(s, rest...);
}
inline std::string check_msg(const char* cond) {
  return std::string("Expected ") + cond +
         " to be true, but got false.  (Could this error message be improved?  If so, please report an "
         "enhancement request to PyTorch.)";
}
template <typename... A>
std::string check_msg(const char*, const A&... args) {
  std::ostringstream s;
  put(s, args...);
  return s.str();
}
}  // namespace detail
}  // namespace c10

#define DTORCH_CHECK_AS(EXC, cond, ...)                                          \
  do {                                                                           \
    if (!(cond)) throw EXC(::c10::detail::check_msg(#cond, ##__VA_ARGS__));      \
  } while (0)
#define TORCH_CHECK(cond, ...) DTORCH_CHECK_AS(::c10::Error, cond, ##__VA_ARGS__)
#define TORCH_CHECK_VALUE(cond, ...) DTORCH_CHECK_AS(::c10::ValueError, cond, ##__VA_ARGS__)
#define TORCH_CHECK_TYPE(cond, ...) DTORCH_CHECK_AS(::c10::TypeError, cond, ##__VA_ARGS__)
#define TORCH_CHECK_INDEX(cond, ...) DTORCH_CHECK_AS(::c10::IndexError, cond, ##__VA_ARGS__)
#define TORCH_CHECK_NOT_IMPLEMENTED(cond, ...) DTORCH_CHECK_AS(::c10::NotImplementedError, cond, ##__VA_ARGS__)
#define TORCH_INTERNAL_ASSERT(cond, ...) TORCH_CHECK(cond, ##__VA_ARGS__)

// AT_DISPATCH_*(scalar_type, "name", [&] { ... scalar_t ... }): runs the lambda with scalar_t bound to the C++ type.
#define AT_DISPATCH_CASE(ENUM, TYPE, ...) \
  case ::c10::ScalarType::ENUM: {         \
    using scalar_t = TYPE;                \
    return __VA_ARGS__();                 \
  }
#define DTORCH_DISPATCH_SWITCH(TYPE, NAME, CASES)                                                        \
  [&] {                                                                                                  \
    const ::c10::ScalarType _st = (TYPE);                                                                \
    switch (_st) {                                                                                       \
      CASES                                                                                              \
      default:                                                                                           \
        throw ::c10::NotImplementedError(std::string("\"") + (NAME) + "\" not implemented for '" +       \
                                         ::c10::toString(_st) + "'");                                    \
    }                                                                                                    \
  }()
#define DTORCH_FLOATING_CASES(...) \
  AT_DISPATCH_CASE(Double, double, __VA_ARGS__) AT_DISPATCH_CASE(Float, float, __VA_ARGS__)
#define DTORCH_INTEGRAL_CASES(...)                                                                  \
  AT_DISPATCH_CASE(Byte, uint8_t, __VA_ARGS__) AT_DISPATCH_CASE(Char, int8_t, __VA_ARGS__)         \
  AT_DISPATCH_CASE(Short, int16_t, __VA_ARGS__) AT_DISPATCH_CASE(Int, int32_t, __VA_ARGS__)        \
  AT_DISPATCH_CASE(Long, int64_t, __VA_ARGS__)
#define AT_DISPATCH_FLOATING_TYPES(TYPE, NAME, ...) \
  DTORCH_DISPATCH_SWITCH(TYPE, NAME, DTORCH_FLOATING_CASES(__VA_ARGS__))
#define AT_DISPATCH_FLOATING_TYPES_AND_HALF(TYPE, NAME, ...) \
  DTORCH_DISPATCH_SWITCH(TYPE, NAME, DTORCH_FLOATING_CASES(__VA_ARGS__) AT_DISPATCH_CASE(Half, ::c10::Half, __VA_ARGS__))
#define AT_DISPATCH_INTEGRAL_TYPES(TYPE, NAME, ...) \
  DTORCH_DISPATCH_SWITCH(TYPE, NAME, DTORCH_INTEGRAL_CASES(__VA_ARGS__))
#define AT_DISPATCH_ALL_TYPES(TYPE, NAME, ...) \
  DTORCH_DISPATCH_SWITCH(TYPE, NAME, DTORCH_INTEGRAL_CASES(__VA_ARGS__) DTORCH_FLOATING_CASES(__VA_ARGS__))
