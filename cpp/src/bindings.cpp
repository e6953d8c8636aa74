// The one binding file. Each kernel is bound by one m.def below, whose body reads the float type
// from its leading array (dispatch), checks every array argument through a Call (dtype, shape,
// C-contiguity, overlap of outputs with inputs) and runs the kernel with the GIL released
// (Call::run). Kernels live in cpp/include/mrusfusion, are listed once in kernel_table.hpp and
// know nothing of Python; their typed stub is python/mrusfusion/_core.pyi.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <tuple>
#include <type_traits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "mrusfusion/table_impl.hpp"

namespace py = pybind11;
using namespace mrusfusion::detail;
using mrusfusion::KernelTable;

namespace {

// Which build of the kernels runs: the AVX2/FMA one when compiled, supported by the CPU and
// not refused through MRUSFUSION_SIMD=baseline; else the baseline x86-64 one.
bool cpu_has_avx2() {
#if defined(MRUSFUSION_AVX2) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool simd_default() {
  const char* env = std::getenv("MRUSFUSION_SIMD");
  if (env && std::string(env) == "baseline") return false;
  return mrusfusion::avx2_compiled() && cpu_has_avx2();
}

bool g_avx2 = simd_default();

template <class T>
const KernelTable<T>& K();

template <>
const KernelTable<double>& K<double>() {
  static const KernelTable<double> base = make_table<double>();
  return g_avx2 ? mrusfusion::avx2_table_double() : base;
}

template <>
const KernelTable<float>& K<float>() {
  static const KernelTable<float> base = make_table<float>();
  return g_avx2 ? mrusfusion::avx2_table_float() : base;
}

std::string simd_name() { return g_avx2 ? "avx2+fma" : "baseline"; }

void set_simd(const std::string& name) {
  if (name == "baseline") {
    g_avx2 = false;
  } else if (name == "avx2+fma" || name == "avx2") {
    if (!(mrusfusion::avx2_compiled() && cpu_has_avx2()))
      throw py::value_error("this build or CPU has no AVX2/FMA kernels");
    g_avx2 = true;
  } else {
    throw py::value_error("`name` must be 'baseline' or 'avx2', got '" + name + "'");
  }
}

// ------------------------------------------------------------------------ argument checking
std::string quoted(const char* name) { return std::string("`") + name + "`"; }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
  return s + (a.ndim() == 1 ? ",)" : ")");
}


template <class E>
const char* dtype_name() {
  return std::is_same_v<E, double> ? "float64" : std::is_same_v<E, float> ? "float32"
         : std::is_same_v<E, std::complex<double>> ? "complex128" : "complex64";
}

py::array as_array(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(quoted(name) + " must be a NumPy array, got " +
                         std::string(py::str(py::type::of(o).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(o);
}

py::array as_nd(const py::object& o, const char* name) {
  py::array a = as_array(o, name);
  if (a.ndim() != 2 && a.ndim() != 3)
    throw py::value_error(quoted(name) + " must be a 2-D or 3-D array, got shape " +
                          shape_str(a));
  return a;
}

// The expected shape of an argument: up to kMaxDim + 1 extents.
struct Dims {
  idx d[mrusfusion::kMaxDim + 1] = {0, 0, 0, 0};
  int nd = 0;
  Dims() = default;
  Dims(std::initializer_list<idx> l) {
    for (idx v : l) d[nd++] = v;
  }
  std::string str() const {
    std::string s = "(";
    for (int k = 0; k < nd; ++k) s += (k ? ", " : "") + std::to_string(d[k]);
    return s + (nd == 1 ? ",)" : ")");
  }
};

// A signal that arrived while a kernel ran (Ctrl-C) is raised by the kernel call itself:
// PyErr_CheckSignals runs the Python handlers (SIGINT raises KeyboardInterrupt). Otherwise the
// interpreter acts at its next eval-breaker check, and the C handler sets that breaker only when
// it runs on the main thread, not on an OpenMP or FFTW thread that received the signal (CPython
// re-arms it when the main thread next takes the GIL).
void raise_pending_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

// Whether an output may be the very same buffer as an input (elementwise kernels), or must not
// overlap any other argument at all (stencils, spectral folds: the kernels take __restrict).
enum class Overlap { none, identical };

// The arrays of one kernel call with float type T, on the 2-D or 3-D grid of its leading array,
// which the row-wise kernels see as n1 rows (all axes but the last) of n2 values.
// Each accessor checks one argument (None, type, dtype, shape; outputs also C-contiguity and
// write access), keeps it referenced until the call returns, and hands the kernel a raw pointer.
// Inputs that are not C-contiguous are copied; outputs are never copied.
template <class T>
class Call {
 public:
  using value_type = T;
  using C = std::complex<T>;
  Dims lead;
  idx n1 = 1, n2 = 1;

  explicit Call(const py::array& a) {
    lead.nd = static_cast<int>(a.ndim());
    for (int k = 0; k < lead.nd; ++k) lead.d[k] = a.shape(k);
    n2 = lead.d[lead.nd - 1];
    for (int k = 0; k + 1 < lead.nd; ++k) n1 *= lead.d[k];
  }

  // The leading array's shape padded to kMaxDim axes with leading 1s (a 2-D image is (1, n1, n2)).
  void padded(idx* n) const {
    const int off = mrusfusion::kMaxDim - lead.nd;
    for (int k = 0; k < mrusfusion::kMaxDim; ++k) n[k] = k < off ? 1 : lead.d[k - off];
  }

  // Required input of element type E and shape dims (default: the leading array's shape).
  template <class E = T>
  const E* in(const py::object& o, const char* name) {
    return in<E>(o, name, lead);
  }
  template <class E = T>
  const E* in(const py::object& o, const char* name, const Dims& dims) {
    if (o.is_none()) throw py::value_error(quoted(name) + " is required");
    return opt_in<E>(o, name, dims);
  }

  // Optional input: None gives the kernel a null pointer.
  template <class E = T>
  const E* opt_in(const py::object& o, const char* name) {
    return opt_in<E>(o, name, lead);
  }
  template <class E = T>
  const E* opt_in(const py::object& o, const char* name, const Dims& dims) {
    if (o.is_none()) return nullptr;
    const py::array a = checked<E>(o, name, dims);
    auto c = py::array_t<E, py::array::c_style>::ensure(a);
    const E* p = c.data();
    hold(std::move(c), name, p, false, Overlap::none);
    return p;
  }

  // Required output (caller-owned, written by the kernel).
  template <class E = T>
  E* out(const py::object& o, const char* name, Overlap overlap = Overlap::none) {
    return out<E>(o, name, lead, overlap);
  }
  template <class E = T>
  E* out(const py::object& o, const char* name, const Dims& dims,
         Overlap overlap = Overlap::none) {
    if (o.is_none()) throw py::value_error(quoted(name) + " is required");
    return opt_out<E>(o, name, dims, overlap);
  }

  // Optional output: None gives the kernel a null pointer.
  template <class E = T>
  E* opt_out(const py::object& o, const char* name, Overlap overlap = Overlap::none) {
    return opt_out<E>(o, name, lead, overlap);
  }
  template <class E = T>
  E* opt_out(const py::object& o, const char* name, const Dims& dims,
             Overlap overlap = Overlap::none) {
    if (o.is_none()) return nullptr;
    py::array a = checked<E>(o, name, dims);
    if (!(a.flags() & py::array::c_style))
      throw py::value_error(quoted(name) + " must be C-contiguous");
    if (!a.writeable()) throw py::value_error(quoted(name) + " must be writeable");
    E* p = static_cast<E*>(a.mutable_data());
    hold(std::move(a), name, p, true, overlap);
    return p;
  }

  // Runs kernel() without the GIL once the arguments are known not to overlap, then raises any
  // signal that arrived meanwhile. Returns what the kernel returns.
  template <class F>
  auto run(F&& kernel) {
    check_overlap();
    using R = decltype(kernel());
    if constexpr (std::is_void_v<R>) {
      {
        py::gil_scoped_release nogil;
        kernel();
      }
      raise_pending_signals();
    } else {
      R r{};
      {
        py::gil_scoped_release nogil;
        r = kernel();
      }
      raise_pending_signals();
      return r;
    }
  }

 private:
  struct Span {
    const char* name;
    std::uintptr_t lo, hi;
    bool output;
    Overlap overlap;
  };
  // Fixed storage: a call has at most a dozen arrays, and the small kernels of the v-step solver
  // are called thousands of times per fusion, so the checks allocate nothing.
  static constexpr size_t kMaxArrays = 12;
  py::object held_[kMaxArrays];
  Span spans_[kMaxArrays];
  size_t count_ = 0;

  template <class E>
  py::array checked(const py::object& o, const char* name, const Dims& dims) {
    if (!py::isinstance<py::array>(o))
      throw py::type_error(quoted(name) + " must be a NumPy array or None, got " +
                           std::string(py::str(py::type::of(o).attr("__name__"))));
    py::array a = py::reinterpret_borrow<py::array>(o);
    if (!a.dtype().equal(py::dtype::of<E>()))
      throw py::type_error(quoted(name) + " must have dtype " + dtype_name<E>() +
                           " (native byte order), got " + std::string(py::str(a.dtype())));
    bool same = a.ndim() == static_cast<py::ssize_t>(dims.nd);
    for (int k = 0; same && k < dims.nd; ++k) same = a.shape(k) == dims.d[k];
    if (!same)
      throw py::value_error(quoted(name) + " must have shape " + dims.str() + ", got " +
                            shape_str(a));
    return a;
  }

  void hold(py::array a, const char* name, const void* p, bool output, Overlap overlap) {
    if (count_ == kMaxArrays) throw std::logic_error("Call: more than kMaxArrays arrays");
    const auto lo = reinterpret_cast<std::uintptr_t>(p);
    spans_[count_] = {name, lo, lo + static_cast<std::uintptr_t>(a.nbytes()), output, overlap};
    held_[count_++] = std::move(a);
  }

  void check_overlap() const {
    for (size_t i = 0; i < count_; ++i) {
      for (size_t j = i + 1; j < count_; ++j) {
        const Span& a = spans_[i];
        const Span& b = spans_[j];
        if (!(a.output || b.output) || a.lo == a.hi || b.lo == b.hi) continue;
        if (a.hi <= b.lo || b.hi <= a.lo) continue;
        const Span& o = b.output ? b : a;  // named after the argument it collides with
        const Span& other = b.output ? a : b;
        const bool identical = a.lo == b.lo && a.hi == b.hi;
        if (identical && !other.output && o.overlap == Overlap::identical) continue;
        if (o.overlap == Overlap::identical && !other.output)
          throw py::value_error(quoted(o.name) + " may be " + quoted(other.name) +
                                " itself but must not partly overlap it");
        throw py::value_error(quoted(o.name) + " must not overlap " + quoted(other.name) +
                              " in memory");
      }
    }
  }
};

template <class CallT>
using FloatOf = typename std::remove_reference_t<CallT>::value_type;

// The one float/double dispatch of the module: the dtype of the leading array `name` (real,
// or a complex spectrum) chooses T, and f receives a Call<T> on that array's grid.
enum class Lead { real, spectrum };

template <Lead kind = Lead::real, class F>
auto dispatch(const py::object& lead, const char* name, F&& f) {
  const py::array a = as_nd(lead, name);
  using D = std::conditional_t<kind == Lead::real, double, std::complex<double>>;
  using S = std::conditional_t<kind == Lead::real, float, std::complex<float>>;
  if (a.dtype().equal(py::dtype::of<D>())) {
    Call<double> c(a);
    return f(c);
  }
  if (a.dtype().equal(py::dtype::of<S>())) {
    Call<float> c(a);
    return f(c);
  }
  throw py::type_error(quoted(name) + " must have dtype " + dtype_name<S>() + " or " +
                       dtype_name<D>() + ", got " + std::string(py::str(a.dtype())));
}

// ------------------------------------------------------------------------ scalar arguments
// Per-axis values (one per axis of the leading array) padded to kMaxDim with `pad` in front.
void per_axis(const std::vector<double>& v, int nd, const char* name, double pad, double* out) {
  if (static_cast<int>(v.size()) != nd)
    throw py::value_error(quoted(name) + " must have " + std::to_string(nd) +
                          " components (one per axis), got " + std::to_string(v.size()));
  const int off = mrusfusion::kMaxDim - nd;
  for (int k = 0; k < mrusfusion::kMaxDim; ++k) out[k] = k < off ? pad : v[k - off];
}

template <class CallT>
GradSpec grad_spec(const CallT& c, int mode, const std::vector<double>& u, double eps) {
  if (mode != 0 && mode != 1)
    throw py::value_error("`mode` must be 0 (directional) or 1 (magnitude), got " +
                          std::to_string(mode));
  GradSpec s;
  s.mode = mode == 0 ? GradMode::directional : GradMode::magnitude;
  if (s.mode == GradMode::directional) per_axis(u, c.lead.nd, "u", 0.0, s.u);  // else unused
  s.eps = eps;
  return s;
}

// The grid of the leading array with the difference weights h_ref / h_a (None: all 1).
template <class CallT>
Grid grid_of(const CallT& c, const py::object& weights) {
  Grid g;
  c.padded(g.n);
  if (!weights.is_none()) {
    per_axis(weights.cast<std::vector<double>>(), c.lead.nd, "weights", 1.0, g.w);
    for (double w : g.w)
      if (!(w > 0) || !std::isfinite(w))
        throw py::value_error("`weights` must be positive and finite");
  }
  return g;
}

void check_degree(int degree) {
  if (degree < 0 || degree > kMaxDegree)
    throw py::value_error("`degree` must be between 0 and " + std::to_string(kMaxDegree) +
                          ", got " + std::to_string(degree));
}

void check_coeffs(const py::object& coeffs, int degree) {
  check_degree(degree);
  const py::array c = as_array(coeffs, "coeffs");
  if (c.ndim() != 1 || c.shape(0) != n_coeffs(degree))
    throw py::value_error("`coeffs` must have shape (" + std::to_string(n_coeffs(degree)) +
                          ",) for degree " + std::to_string(degree) + ", got " + shape_str(c));
}

void check_feature_scales(double x_s, double g_s) {
  if (!(x_s > 0) || !(g_s > 0))
    throw py::value_error("feature scales `x_s` and `g_s` must be positive, got " +
                          std::to_string(x_s) + " and " + std::to_string(g_s));
}

// The fine/coarse grids of the half spectrum leading `c`, whose last axis holds n2/2 + 1 of the
// fine grid's n2 columns; `s` is one ratio for every axis or one per axis.
template <class CallT>
SpectralGrid spectral_grid(const CallT& c, idx n2, const py::object& s) {
  const int nd = c.lead.nd;
  std::vector<idx> sv;
  if (py::isinstance<py::int_>(s)) sv.assign(static_cast<size_t>(nd), s.cast<idx>());
  else sv = s.cast<std::vector<idx>>();
  if (static_cast<int>(sv.size()) != nd)
    throw py::value_error("`s` must be an int or have " + std::to_string(nd) + " components");
  for (idx v : sv)
    if (v < 1) throw py::value_error("`s` must be >= 1, got " + std::to_string(v));
  const idx h2 = c.lead.d[nd - 1];
  if (n2 / 2 + 1 != h2)
    throw py::value_error("`n2` = " + std::to_string(n2) + " does not match the half-spectrum " +
                          "width " + std::to_string(h2) + " (n2 // 2 + 1)");
  idx n[mrusfusion::kMaxDim], sp[mrusfusion::kMaxDim];
  c.padded(n);
  n[mrusfusion::kMaxDim - 1] = n2;
  const int off = mrusfusion::kMaxDim - nd;
  for (int k = 0; k < mrusfusion::kMaxDim; ++k) sp[k] = k < off ? 1 : sv[static_cast<size_t>(k - off)];
  for (int k = 0; k < mrusfusion::kMaxDim; ++k)
    if (n[k] % sp[k] != 0)
      throw py::value_error("the grid's shape must be a multiple of `s` on every axis");
  return SpectralGrid(n, sp);
}

// The coarse half-spectrum shape of a spectral grid, in the leading array's dimensionality.
Dims coarse_dims(const SpectralGrid& sg, int nd) {
  Dims d;
  d.nd = nd;
  for (int k = 0; k < nd; ++k) d.d[k] = sg.m[mrusfusion::kMaxDim - nd + k];
  d.d[nd - 1] = sg.mh2;
  return d;
}

py::dict build_info() {
  py::dict d;
  d["version"] = MRUSFUSION_VERSION;
  d["compiler"] = MRUSFUSION_COMPILER;
  d["cxx_flags"] = MRUSFUSION_CXX_FLAGS;
  d["build_type"] = MRUSFUSION_BUILD_TYPE;
  d["simd"] = simd_name();
  d["avx2_compiled"] = mrusfusion::avx2_compiled();
#if defined(_OPENMP)
  d["openmp"] = true;
  d["openmp_version"] = static_cast<int>(_OPENMP);
  d["openmp_max_threads"] = omp_get_max_threads();
#else
  d["openmp"] = false;
  d["openmp_version"] = 0;
  d["openmp_max_threads"] = 1;
#endif
  return d;
}

using Obj = const py::object&;

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mrusfusion compiled kernels (private; use the mrusfusion package)";
  const auto none = py::none();
  const auto threads = py::arg("threads") = 1;

  m.def("build_info", &build_info, "Compiler, flags and OpenMP status of this build.");
  m.def("simd", &simd_name, "Which build of the kernels runs: 'avx2+fma' or 'baseline'.");
  m.def("set_simd", &set_simd, py::arg("name"),
        "Choose the kernels' build: 'avx2' (if compiled and supported) or 'baseline'.");

  m.def(
      "roundtrip",
      [](Obj x, int nt) {
        return dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* src = c.in(x, "x");
          py::array_t<T> out(std::vector<py::ssize_t>(c.lead.d, c.lead.d + c.lead.nd));
          T* dst = out.mutable_data();
          const idx n1 = c.n1, n2 = c.n2;
          c.run([&] {
            for_rows(n1, nt, [&](idx i) {
              for (idx j = 0; j < n2; ++j) dst[i * n2 + j] = src[i * n2 + j];
            });
          });
          return py::array(out);
        });
      },
      py::arg("x"), threads, "Copy a 2-D or 3-D float array through the native layer (build check).");

  m.def(
      "gradient",
      [](Obj x, int mode, std::vector<double> u, double eps, Obj out, int nt, Obj weights) {
        dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const GradSpec gs = grad_spec(c, mode, u, eps);
          const Grid gr = grid_of(c, weights);
          const T* xp = c.in(x, "x");
          T* o = c.out(out, "out");
          c.run([&] { K<T>().gradient(xp, gr, gs, o, nt); });
        });
      },
      py::arg("x"), py::arg("mode"), py::arg("u"), py::arg("eps"), py::arg("out"), threads,
      py::arg("weights") = none,
      "out = sum_a u_a w_a D_a x (mode 0), or sqrt(sum_a (w_a D_a x)^2 + eps^2) (1).");

  m.def(
      "gradient_adjoint",
      [](Obj y, std::vector<double> u, Obj out, int nt, Obj weights) {
        dispatch(y, "y", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const GradSpec gs = grad_spec(c, 0, u, 0.0);
          const Grid gr = grid_of(c, weights);
          const T* yp = c.in(y, "y");
          T* o = c.out(out, "out");
          c.run([&] { K<T>().gradient_adjoint(yp, gr, gs, o, nt); });
        });
      },
      py::arg("y"), py::arg("u"), py::arg("out"), threads, py::arg("weights") = none,
      "out = Du^T y, the adjoint of the directional gradient.");

  m.def(
      "dtd_apply",
      [](Obj p, Obj a_px, double a, double b, Obj out, int nt, Obj weights) {
        return dispatch(p, "p", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const Grid gr = grid_of(c, weights);
          const T* pp = c.in(p, "p");
          const T* ap = c.opt_in(a_px, "a_px");
          T* o = c.out(out, "out");
          return c.run([&] { return K<T>().dtd_apply(pp, gr, ap, a, b, o, nt); });
        });
      },
      py::arg("p"), py::arg("a_px"), py::arg("a"), py::arg("b"), py::arg("out"), threads,
      py::arg("weights") = none,
      "out = (a + a_px) p + b sum_a w_a^2 D_a^T D_a p (periodic Laplacian); returns <p, out>.");

  m.def(
      "squared_gradient_norm",
      [](Obj x, int nt, Obj weights) {
        return dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const Grid gr = grid_of(c, weights);
          const T* xp = c.in(x, "x");
          return c.run([&] { return K<T>().squared_gradient_norm(xp, gr, nt); });
        });
      },
      py::arg("x"), threads, py::arg("weights") = none, "sum_a w_a^2 ||D_a x||^2.");

  m.def(
      "coupling_eval",
      [](Obj x, Obj coeffs, int degree, int mode, std::vector<double> u, double eps, Obj v,
         Obj mask, Obj f, Obj fx, Obj fg, int nt, Obj weights) {
        check_coeffs(coeffs, degree);
        return dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const GradSpec gs = grad_spec(c, mode, u, eps);
          const Grid gr = grid_of(c, weights);
          const idx n1 = c.n1, n2 = c.n2;
          const T* xp = c.in(x, "x");
          const T* cp = c.in(coeffs, "coeffs", {n_coeffs(degree)});
          const T* vp = c.opt_in(v, "v");
          const T* mp = c.opt_in(mask, "mask");
          // Outputs not asked for go to scratch images (the kernel writes all three).
          py::array_t<T> scratch;
          T* sp = nullptr;
          if (f.is_none() || fx.is_none() || fg.is_none()) {
            scratch = py::array_t<T>({py::ssize_t(3), n1, n2});
            sp = scratch.mutable_data();
          }
          T* fo = f.is_none() ? sp : c.out(f, "f");
          T* fxo = fx.is_none() ? sp + n1 * n2 : c.out(fx, "fx");
          T* fgo = fg.is_none() ? sp + 2 * n1 * n2 : c.out(fg, "fg");
          return c.run([&] {
            return K<T>().coupling_eval(xp, gr, gs, cp, degree, vp, mp, fo, fxo, fgo, nt);
          });
        });
      },
      py::arg("x"), py::arg("coeffs"), py::arg("degree"), py::arg("mode"), py::arg("u"),
      py::arg("eps"), py::arg("v") = none, py::arg("mask") = none,
      py::arg("f") = none, py::arg("fx") = none, py::arg("fg") = none, threads,
      py::arg("weights") = none,
      "f(x, g(x)) and its partial derivatives into f, fx, fg; returns sum m (v - f)^2.");

  m.def(
      "jacobian_transpose",
      [](Obj x, Obj r, Obj r_sub, Obj mask, Obj fx, Obj fg, int mode, std::vector<double> u,
         double eps, double scale, Obj w1, Obj w2, Obj out, int nt, Obj weights, Obj w3) {
        dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const GradSpec gs = grad_spec(c, mode, u, eps);
          const Grid gr = grid_of(c, weights);
          const T* xp = c.in(x, "x");
          const T* rp = c.in(r, "r");
          const T* sp = c.opt_in(r_sub, "r_sub");
          const T* mp = c.opt_in(mask, "mask");
          const T* fxp = c.in(fx, "fx");
          const T* fgp = c.in(fg, "fg");
          T* w1o = c.out(w1, "w1");
          if (gs.mode == GradMode::magnitude && w2.is_none())
            throw py::value_error("`w2` is required for the magnitude gradient (mode 1)");
          T* w2o = c.opt_out(w2, "w2");
          if (gs.mode == GradMode::magnitude && gr.n[0] > 1 && w3.is_none())
            throw py::value_error("`w3` is required for the magnitude gradient of a volume");
          T* w3o = gs.mode == GradMode::magnitude && gr.n[0] > 1 ? c.opt_out(w3, "w3") : nullptr;
          T* o = c.out(out, "out");
          c.run([&] {
            K<T>().jacobian_transpose(xp, gr, gs, rp, sp, mp, fxp, fgp, scale, w1o, w2o, w3o, o,
                                      nt);
          });
        });
      },
      py::arg("x"), py::arg("r"), py::arg("r_sub"), py::arg("mask"), py::arg("fx"), py::arg("fg"),
      py::arg("mode"), py::arg("u"), py::arg("eps"), py::arg("scale"),
      py::arg("w1"), py::arg("w2"), py::arg("out"), threads, py::arg("weights") = none,
      py::arg("w3") = none,
      "out = scale J^T (m (r - r_sub)) of x -> f(x, g(x)); w1, w2, w3 are work images.");

  m.def(
      "poly_normal_equations",
      [](Obj x, Obj g, Obj y, Obj mask, int degree, double x_c, double x_s, double g_s, int nt) {
        check_degree(degree);
        check_feature_scales(x_s, g_s);
        return dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* xp = c.in(x, "x");
          const T* gp = c.in(g, "g");
          const T* yp = c.in(y, "y");
          const T* mp = c.opt_in(mask, "mask");
          const int nc = n_coeffs(degree);
          py::array_t<double> gram({nc, nc}), rhs(nc);
          double* G = gram.mutable_data();
          double* B = rhs.mutable_data();
          const double yy = c.run([&] {
            return K<T>().poly_normal_equations(xp, gp, yp, mp, c.n1, c.n2, degree, x_c, x_s, g_s,
                                                G, B, nt);
          });
          return py::make_tuple(gram, rhs, yy);
        });
      },
      py::arg("x"), py::arg("g"), py::arg("y"), py::arg("mask"), py::arg("degree"),
      py::arg("x_c"), py::arg("x_s"), py::arg("g_s"), threads,
      "(A^T W A, A^T W y, y^T W y) of the least-squares polynomial fit.");

  m.def(
      "local_coupling_eval",
      [](Obj x, Obj coeffs, int degree, double x_c, double x_s, double g_s, int mode,
         std::vector<double> u, double eps, Obj v, Obj mask, Obj f, Obj fx, Obj fg, int nt) {
        check_degree(degree);
        check_feature_scales(x_s, g_s);
        if (as_array(x, "x").ndim() != 2)
          throw py::value_error("the local link is 2-D only: `x` must be a 2-D array, got shape " +
                                shape_str(as_array(x, "x")));
        const py::array ca = as_array(coeffs, "coeffs");
        const idx nd = n_coeffs(degree);
        if (ca.ndim() != 3 || ca.shape(0) < 2 || ca.shape(1) < 2 || ca.shape(2) != nd)
          throw py::value_error("`coeffs` must have shape (k1, k2, " + std::to_string(nd) +
                                ") with k1, k2 >= 2 knots for degree " + std::to_string(degree) +
                                ", got " + shape_str(ca));
        const idx k1 = ca.shape(0), k2 = ca.shape(1);
        return dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const GradSpec gs = grad_spec(c, mode, u, eps);
          const idx n1 = c.n1, n2 = c.n2;
          const T* xp = c.in(x, "x");
          const T* cp = c.in(coeffs, "coeffs", {k1, k2, nd});
          const T* vp = c.opt_in(v, "v");
          const T* mp = c.opt_in(mask, "mask");
          // Outputs not asked for go to scratch images (the kernel writes all three).
          py::array_t<T> scratch;
          T* sp = nullptr;
          if (f.is_none() || fx.is_none() || fg.is_none()) {
            scratch = py::array_t<T>({py::ssize_t(3), n1, n2});
            sp = scratch.mutable_data();
          }
          T* fo = f.is_none() ? sp : c.out(f, "f");
          T* fxo = fx.is_none() ? sp + n1 * n2 : c.out(fx, "fx");
          T* fgo = fg.is_none() ? sp + 2 * n1 * n2 : c.out(fg, "fg");
          return c.run([&] {
            return K<T>().local_coupling_eval(xp, n1, n2, gs, cp, degree, k1, k2, x_c, x_s, g_s,
                                              vp, mp, fo, fxo, fgo, nt);
          });
        });
      },
      py::arg("x"), py::arg("coeffs"), py::arg("degree"), py::arg("x_c"), py::arg("x_s"),
      py::arg("g_s"), py::arg("mode"), py::arg("u"), py::arg("eps"),
      py::arg("v") = none, py::arg("mask") = none, py::arg("f") = none, py::arg("fx") = none,
      py::arg("fg") = none, threads,
      "The local link (knot coefficients (k1, k2, nd), scaled features) and its partial "
      "derivatives into f, fx, fg; returns sum m (v - f)^2.");

  m.def(
      "local_normal_equations",
      [](Obj x, Obj g, Obj y, Obj mask, int degree, std::vector<idx> knots, double x_c,
         double x_s, double g_s, int nt) {
        check_degree(degree);
        check_feature_scales(x_s, g_s);
        if (knots.size() != 2 || knots[0] < 2 || knots[1] < 2)
          throw py::value_error("`knot_shape` must be (k1, k2) with at least 2 knots per axis");
        if (as_array(x, "x").ndim() != 2)
          throw py::value_error("the local link is 2-D only: `x` must be a 2-D array, got shape " +
                                shape_str(as_array(x, "x")));
        return dispatch(x, "x", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* xp = c.in(x, "x");
          const T* gp = c.in(g, "g");
          const T* yp = c.in(y, "y");
          const T* mp = c.opt_in(mask, "mask");
          const idx nd = n_coeffs(degree), nk = knots[0] * knots[1];
          py::array_t<double> blocks({nk, idx(kLocalSlots2), nd, nd}), rhs({nk, nd});
          double* B = blocks.mutable_data();
          double* R = rhs.mutable_data();
          const double yy = c.run([&] {
            return K<T>().local_normal_equations(xp, gp, yp, mp, c.n1, c.n2, degree, knots[0],
                                                 knots[1], x_c, x_s, g_s, B, R, nt);
          });
          return py::make_tuple(blocks, rhs, yy);
        });
      },
      py::arg("x"), py::arg("g"), py::arg("y"), py::arg("mask"), py::arg("degree"),
      py::arg("knot_shape"), py::arg("x_c"), py::arg("x_s"), py::arg("g_s"), threads,
      "(blocks, rhs, y^T W y) of the joint fit of the local link: blocks[k, o] couples knot k "
      "with its forward neighbour o, (0,0) (0,1) (1,-1) (1,0) (1,1).");

  m.def(
      "vstep_eval",
      [](Obj v, Obj y, Obj w, Obj mask, double tau2, double gamma, double tau3, double dk,
         Obj grad, Obj curv, int nt, Obj weights) {
        return dispatch(v, "v", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const Grid gr = grid_of(c, weights);
          const T* vp = c.in(v, "v");
          const T* yp = c.in(y, "y");
          const T* wp = c.opt_in(w, "w");
          const T* mp = c.opt_in(mask, "mask");
          T* go = c.opt_out(grad, "grad");
          T* co = c.opt_out(curv, "curv");
          double st[4];
          const double val = c.run([&] {
            return K<T>().vstep_eval(vp, yp, wp, mp, gr, tau2, gamma, tau3, dk, go, co, st, nt);
          });
          return std::make_tuple(val, st[0], st[1], st[2], st[3]);
        });
      },
      py::arg("v"), py::arg("y"), py::arg("w"), py::arg("mask"), py::arg("tau2"), py::arg("gamma"),
      py::arg("tau3"), py::arg("dk"), py::arg("grad") = none, py::arg("curv") = none, threads,
      py::arg("weights") = none,
      "(G_k(v), min curvature, mean curvature, G(v), ||grad||^2) of the v-step sub-problem.");

  m.def(
      "diff_stats",
      [](Obj a, Obj b, Obj c_, Obj mask, int nt) {
        return dispatch(a, "a", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* ap = c.in(a, "a");
          const T* bp = c.in(b, "b");
          const T* cp = c.opt_in(c_, "c");
          const T* mp = c.opt_in(mask, "mask");
          double r[3];
          c.run([&] { K<T>().diff_stats(ap, bp, cp, mp, c.n1, c.n2, r, nt); });
          return std::make_tuple(r[0], r[1], r[2]);
        });
      },
      py::arg("a"), py::arg("b"), py::arg("c") = none, py::arg("mask") = none, threads,
      "(sum (a-b) c, sum m (a-b)^2, sum b^2) in one pass.");

  m.def(
      "dot",
      [](Obj a, Obj b, int nt) {
        return dispatch(a, "a", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* ap = c.in(a, "a");
          const T* bp = c.in(b, "b");
          return c.run([&] { return K<T>().dot(ap, bp, c.n1, c.n2, nt); });
        });
      },
      py::arg("a"), py::arg("b"), threads,
      "<a, b> of two images, accumulated in double in a fixed order.");

  m.def(
      "prox_target",
      [](Obj v, Obj f, Obj mask, double alpha, Obj out, int nt) {
        dispatch(v, "v", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* vp = c.in(v, "v");
          const T* fp = c.in(f, "f");
          const T* mp = c.opt_in(mask, "mask");
          T* o = c.out(out, "out", Overlap::identical);
          c.run([&] { K<T>().prox_target(vp, fp, mp, c.n1 * c.n2, alpha, o, nt); });
        });
      },
      py::arg("v"), py::arg("f"), py::arg("mask"), py::arg("alpha"), py::arg("out"), threads,
      "out = v - alpha m (v - f).");

  m.def(
      "xstep_solve",
      [](Obj Rm, Obj Xk, Obj Gk, Obj Lam, Obj dtd, idx n2, Obj s, double tau1, double L,
         Obj Twork, Obj X, Obj X2, int nt) {
        if (!(L > 0) || !(tau1 >= 0))
          throw py::value_error("need `L` > 0 and `tau1` >= 0, got L = " + std::to_string(L) +
                                ", tau1 = " + std::to_string(tau1));
        dispatch<Lead::spectrum>(Rm, "Rm", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          using C = std::complex<T>;
          const SpectralGrid sg = spectral_grid(c, n2, s);
          const C* rp = c.template in<C>(Rm, "Rm");
          const C* xp = c.template opt_in<C>(Xk, "Xk");
          const C* gp = c.template opt_in<C>(Gk, "Gk");
          const C* lp = c.template in<C>(Lam, "Lam");
          const T* dp = c.in(dtd, "dtd");
          C* tw = c.template out<C>(Twork, "Twork", coarse_dims(sg, c.lead.nd));
          C* xo = c.template out<C>(X, "X");
          C* x2 = c.template opt_out<C>(X2, "X2");
          c.run([&] { K<T>().xstep_solve(rp, xp, gp, lp, dp, sg, tau1, L, tw, xo, x2, nt); });
        });
      },
      py::arg("Rm"), py::arg("Xk"), py::arg("Gk"), py::arg("Lam"), py::arg("dtd"), py::arg("n2"),
      py::arg("s"), py::arg("tau1"), py::arg("L"), py::arg("Twork"), py::arg("X"),
      py::arg("X2") = none, threads,
      "Spectrum of the x-step solution into X (and a copy into X2 when given).");

  m.def(
      "axpby",
      [](Obj a, Obj b, double alpha, double beta, Obj out, int nt) {
        return dispatch(a, "a", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          const T* ap = c.in(a, "a");
          const T* bp = c.in(b, "b");
          T* o = c.out(out, "out", Overlap::identical);
          return c.run([&] { return K<T>().axpby(ap, bp, c.n1, c.n2, alpha, beta, o, nt); });
        });
      },
      py::arg("a"), py::arg("b"), py::arg("alpha"), py::arg("beta"), py::arg("out"), threads,
      "out = alpha a + beta b in one pass (out may be a or b); returns ||out||^2.");

  m.def(
      "spectral_scale",
      [](Obj Z, Obj d, double shift, double scale, int nt) {
        dispatch<Lead::spectrum>(Z, "Z", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          using C = std::complex<T>;
          C* z = c.template out<C>(Z, "Z");
          const T* dp = c.in(d, "d");
          c.run([&] { K<T>().spectral_scale(z, dp, c.n1, c.n2, shift, scale, nt); });
        });
      },
      py::arg("Z"), py::arg("d"), py::arg("shift"), py::arg("scale"), threads,
      "Z /= (shift + scale d) in place.");

  m.def(
      "mr_residual_energy",
      [](Obj X, Obj Lam, Obj Ym, idx n2, Obj s, int nt) {
        return dispatch<Lead::spectrum>(X, "X", [&](auto& c) {
          using T = FloatOf<decltype(c)>;
          using C = std::complex<T>;
          const SpectralGrid sg = spectral_grid(c, n2, s);
          const C* xp = c.template in<C>(X, "X");
          const C* lp = c.template in<C>(Lam, "Lam");
          const C* yp = c.template in<C>(Ym, "Ym", coarse_dims(sg, c.lead.nd));
          return c.run([&] { return K<T>().mr_residual_energy(xp, lp, yp, sg, nt); });
        });
      },
      py::arg("X"), py::arg("Lam"), py::arg("Ym"), py::arg("n2"), py::arg("s"), threads,
      "||y_m - S C x||^2 from X = rfftn(x) and Ym = rfftn(y_m).");
}
