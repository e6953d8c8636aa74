// The one binding file: validates shapes and dtypes once, dispatches float/double, and runs each
// kernel with the GIL released. Kernels live in cpp/include/mrusfusion and know nothing of Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <complex>
#include <string>
#include <tuple>

#include <cstdlib>

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

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

template <class T>
const char* dtype_name() {
  return std::is_same_v<T, double> ? "float64" : std::is_same_v<T, float> ? "float32"
         : std::is_same_v<T, std::complex<double>> ? "complex128" : "complex64";
}

template <class T>
void check_dtype(const py::array& a, const char* name) {
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string("`") + name + "` must have dtype " + dtype_name<T>() +
                         " (native byte order), got " + std::string(py::str(a.dtype())));
}

void check_shape(const py::array& a, const char* name, idx n1, idx n2) {
  if (a.ndim() != 2 || a.shape(0) != n1 || a.shape(1) != n2)
    throw py::value_error(std::string("`") + name + "` must have shape (" + std::to_string(n1) +
                          ", " + std::to_string(n2) + "), got " + shape_str(a));
}

// Read-only input: exact dtype and shape; a non-contiguous array is copied to a contiguous one.
template <class T>
py::array_t<T, py::array::c_style> input(const py::array& a, const char* name, idx n1, idx n2) {
  check_dtype<T>(a, name);
  check_shape(a, name, n1, n2);
  return py::array_t<T, py::array::c_style>::ensure(a);
}

// Optional input: None gives a null pointer to the kernel.
template <class T>
struct Opt {
  py::array_t<T, py::array::c_style> arr;
  bool given = false;
  const T* data() const { return given ? arr.data() : nullptr; }
  py::ssize_t ndim() const { return given ? arr.ndim() : 0; }
};

template <class T>
Opt<T> opt_input(const py::object& o, const char* name, idx n1, idx n2) {
  Opt<T> r;
  if (o.is_none()) return r;
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string("`") + name + "` must be a NumPy array or None");
  r.arr = input<T>(py::reinterpret_borrow<py::array>(o), name, n1, n2);
  r.given = true;
  return r;
}

template <class T>
const T* ptr(const Opt<T>& a) {
  return a.data();
}

// Caller-owned output: exact dtype and shape, C-contiguous and writeable (never copied).
template <class T>
T* output(py::array& a, const char* name, idx n1, idx n2) {
  check_dtype<T>(a, name);
  check_shape(a, name, n1, n2);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string("`") + name + "` must be C-contiguous");
  if (!a.writeable()) throw py::value_error(std::string("`") + name + "` must be writeable");
  return static_cast<T*>(a.mutable_data());
}

template <class T>
T* opt_output(const py::object& o, const char* name, idx n1, idx n2) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string("`") + name + "` must be a NumPy array or None");
  py::array a = py::reinterpret_borrow<py::array>(o);
  return output<T>(a, name, n1, n2);
}

py::array as_array(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string("`") + name + "` must be a NumPy array, got " +
                         std::string(py::str(py::type::of(o).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.ndim() != 2)
    throw py::value_error(std::string("`") + name + "` must be a 2-D array, got shape " + shape_str(a));
  return a;
}

bool is_f64(const py::array& a) { return a.dtype().equal(py::dtype::of<double>()); }
bool is_f32(const py::array& a) { return a.dtype().equal(py::dtype::of<float>()); }

[[noreturn]] void bad_float(const py::array& a, const char* name) {
  throw py::type_error(std::string("`") + name + "` must have dtype float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

GradSpec grad_spec(int mode, double uv, double uh, double eps) {
  if (mode != 0 && mode != 1) throw py::value_error("`mode` must be 0 (directional) or 1 (magnitude)");
  GradSpec s;
  s.mode = mode == 0 ? GradMode::directional : GradMode::magnitude;
  s.uv = uv;
  s.uh = uh;
  s.eps = eps;
  return s;
}

// ---------------------------------------------------------------------------------------------
template <class T>
py::array roundtrip_t(const py::array& x, int threads) {
  auto in = input<T>(x, "x", x.shape(0), x.shape(1));
  py::array_t<T> out({x.shape(0), x.shape(1)});
  const idx n = x.shape(0) * x.shape(1);
  const T* src = in.data();
  T* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    for_rows(x.shape(0), threads, [&](idx i) {
      for (idx j = 0; j < n / x.shape(0); ++j) dst[i * x.shape(1) + j] = src[i * x.shape(1) + j];
    });
  }
  return out;
}

py::array roundtrip(const py::object& xo, int threads) {
  py::array x = as_array(xo, "x");
  if (is_f64(x)) return roundtrip_t<double>(x, threads);
  if (is_f32(x)) return roundtrip_t<float>(x, threads);
  bad_float(x, "x");
}

template <class T>
void gradient_t(const py::array& x, const GradSpec& gs, py::array& out, int threads) {
  const idx n1 = x.shape(0), n2 = x.shape(1);
  auto xi = input<T>(x, "x", n1, n2);
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  K<T>().gradient(xi.data(), n1, n2, gs, o, threads);
}

void gradient_py(const py::object& xo, int mode, double uv, double uh, double eps, py::array out,
                 int threads) {
  py::array x = as_array(xo, "x");
  const GradSpec gs = grad_spec(mode, uv, uh, eps);
  if (is_f64(x)) return gradient_t<double>(x, gs, out, threads);
  if (is_f32(x)) return gradient_t<float>(x, gs, out, threads);
  bad_float(x, "x");
}

template <class T>
void gradient_adjoint_t(const py::array& y, double uv, double uh, py::array& out, int threads) {
  const idx n1 = y.shape(0), n2 = y.shape(1);
  auto yi = input<T>(y, "y", n1, n2);
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  K<T>().gradient_adjoint(yi.data(), n1, n2, uv, uh, o, threads);
}

void gradient_adjoint_py(const py::object& yo, double uv, double uh, py::array out, int threads) {
  py::array y = as_array(yo, "y");
  if (is_f64(y)) return gradient_adjoint_t<double>(y, uv, uh, out, threads);
  if (is_f32(y)) return gradient_adjoint_t<float>(y, uv, uh, out, threads);
  bad_float(y, "y");
}

template <class T>
double dtd_apply_t(const py::array& p, const py::object& apx, double a, double b, py::array& out,
                   int threads) {
  const idx n1 = p.shape(0), n2 = p.shape(1);
  auto pi = input<T>(p, "p", n1, n2);
  auto ai = opt_input<T>(apx, "a_px", n1, n2);
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  return K<T>().dtd_apply(pi.data(), n1, n2, ptr(ai), a, b, o, threads);
}

double dtd_apply_py(const py::object& po, const py::object& apx, double a, double b, py::array out,
                    int threads) {
  py::array p = as_array(po, "p");
  if (is_f64(p)) return dtd_apply_t<double>(p, apx, a, b, out, threads);
  if (is_f32(p)) return dtd_apply_t<float>(p, apx, a, b, out, threads);
  bad_float(p, "p");
}

template <class T>
double sqgrad_t(const py::array& x, int threads) {
  auto xi = input<T>(x, "x", x.shape(0), x.shape(1));
  py::gil_scoped_release nogil;
  return K<T>().squared_gradient_norm(xi.data(), x.shape(0), x.shape(1), threads);
}

double sqgrad_py(const py::object& xo, int threads) {
  py::array x = as_array(xo, "x");
  if (is_f64(x)) return sqgrad_t<double>(x, threads);
  if (is_f32(x)) return sqgrad_t<float>(x, threads);
  bad_float(x, "x");
}

int check_degree(const py::array& c, int degree) {
  if (degree < 0 || degree > kMaxDegree)
    throw py::value_error("`degree` must be between 0 and " + std::to_string(kMaxDegree) +
                          ", got " + std::to_string(degree));
  if (c.ndim() != 1 || c.shape(0) != n_coeffs(degree))
    throw py::value_error("`coeffs` must have shape (" + std::to_string(n_coeffs(degree)) +
                          ",) for degree " + std::to_string(degree) + ", got " + shape_str(c));
  return degree;
}

template <class T>
double coupling_eval_t(const py::array& x, const py::array& c, int degree, const GradSpec& gs,
                       const py::object& v, const py::object& mask, const py::object& f,
                       const py::object& fx, const py::object& fg, int threads) {
  const idx n1 = x.shape(0), n2 = x.shape(1);
  auto xi = input<T>(x, "x", n1, n2);
  check_dtype<T>(c, "coeffs");
  auto ci = py::array_t<T, py::array::c_style>::ensure(c);
  auto vi = opt_input<T>(v, "v", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  // Outputs not asked for go to scratch images (the kernel writes all three).
  py::array_t<T> scratch;
  const bool need = f.is_none() || fx.is_none() || fg.is_none();
  if (need) scratch = py::array_t<T>({py::ssize_t(3), n1, n2});
  T* sp = need ? scratch.mutable_data() : nullptr;
  T* fo = f.is_none() ? sp : opt_output<T>(f, "f", n1, n2);
  T* fxo = fx.is_none() ? sp + n1 * n2 : opt_output<T>(fx, "fx", n1, n2);
  T* fgo = fg.is_none() ? sp + 2 * n1 * n2 : opt_output<T>(fg, "fg", n1, n2);
  py::gil_scoped_release nogil;
  return K<T>().coupling_eval(xi.data(), n1, n2, gs, ci.data(), degree, ptr(vi), ptr(mi), fo, fxo, fgo,
                       threads);
}

double coupling_eval_py(const py::object& xo, py::array c, int degree, int mode, double uv,
                        double uh, double eps, const py::object& v, const py::object& mask,
                        const py::object& f, const py::object& fx, const py::object& fg,
                        int threads) {
  py::array x = as_array(xo, "x");
  check_degree(c, degree);
  const GradSpec gs = grad_spec(mode, uv, uh, eps);
  if (is_f64(x)) return coupling_eval_t<double>(x, c, degree, gs, v, mask, f, fx, fg, threads);
  if (is_f32(x)) return coupling_eval_t<float>(x, c, degree, gs, v, mask, f, fx, fg, threads);
  bad_float(x, "x");
}

template <class T>
void jt_t(const py::array& x, const py::object& a, const py::object& b, const py::object& mask,
          const py::object& fx, const py::object& fg, const GradSpec& gs, double scale,
          const py::object& w1, const py::object& w2, py::array& out, int threads) {
  const idx n1 = x.shape(0), n2 = x.shape(1);
  auto xi = input<T>(x, "x", n1, n2);
  auto ai = opt_input<T>(a, "r", n1, n2);
  auto bi = opt_input<T>(b, "r_sub", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  auto fxi = opt_input<T>(fx, "fx", n1, n2);
  auto fgi = opt_input<T>(fg, "fg", n1, n2);
  if (!ai.ndim() || !fxi.ndim() || !fgi.ndim())
    throw py::value_error("`r`, `fx` and `fg` are required");
  T* w1o = opt_output<T>(w1, "w1", n1, n2);
  T* w2o = opt_output<T>(w2, "w2", n1, n2);
  if (!w1o || (gs.mode == GradMode::magnitude && !w2o))
    throw py::value_error("work images `w1` (and `w2` for the magnitude gradient) are required");
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  K<T>().jacobian_transpose(xi.data(), n1, n2, gs, ai.data(), ptr(bi), ptr(mi), fxi.data(), fgi.data(),
                     scale, w1o, w2o, o, threads);
}

void jt_py(const py::object& xo, const py::object& a, const py::object& b, const py::object& mask,
           const py::object& fx, const py::object& fg, int mode, double uv, double uh, double eps,
           double scale, const py::object& w1, const py::object& w2, py::array out, int threads) {
  py::array x = as_array(xo, "x");
  const GradSpec gs = grad_spec(mode, uv, uh, eps);
  if (is_f64(x)) return jt_t<double>(x, a, b, mask, fx, fg, gs, scale, w1, w2, out, threads);
  if (is_f32(x)) return jt_t<float>(x, a, b, mask, fx, fg, gs, scale, w1, w2, out, threads);
  bad_float(x, "x");
}

template <class T>
py::tuple normal_eq_t(const py::array& x, const py::object& g, const py::object& y,
                      const py::object& mask, int degree, double xc, double xs, double gsc,
                      int threads) {
  const idx n1 = x.shape(0), n2 = x.shape(1);
  auto xi = input<T>(x, "x", n1, n2);
  auto gi = opt_input<T>(g, "g", n1, n2);
  auto yi = opt_input<T>(y, "y", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  if (!gi.ndim() || !yi.ndim()) throw py::value_error("`g` and `y` are required");
  const int nc = n_coeffs(degree);
  py::array_t<double> gram({nc, nc}), rhs(nc);
  double* G = gram.mutable_data();
  double* B = rhs.mutable_data();
  double yy;
  {
    py::gil_scoped_release nogil;
    yy = K<T>().poly_normal_equations(xi.data(), gi.data(), yi.data(), ptr(mi), n1, n2, degree, xc, xs,
                               gsc, G, B, threads);
  }
  return py::make_tuple(gram, rhs, yy);
}

py::tuple normal_eq_py(const py::object& xo, const py::object& g, const py::object& y,
                       const py::object& mask, int degree, double xc, double xs, double gsc,
                       int threads) {
  py::array x = as_array(xo, "x");
  if (degree < 0 || degree > kMaxDegree)
    throw py::value_error("`degree` must be between 0 and " + std::to_string(kMaxDegree));
  if (!(xs > 0) || !(gsc > 0)) throw py::value_error("feature scales must be positive");
  if (is_f64(x)) return normal_eq_t<double>(x, g, y, mask, degree, xc, xs, gsc, threads);
  if (is_f32(x)) return normal_eq_t<float>(x, g, y, mask, degree, xc, xs, gsc, threads);
  bad_float(x, "x");
}

template <class T>
void prox_t(const py::array& a, const py::object& y, const py::object& mask, double tau2,
            double gamma, double rho, py::array& out, int threads) {
  const idx n1 = a.shape(0), n2 = a.shape(1);
  auto ai = input<T>(a, "a", n1, n2);
  auto yi = opt_input<T>(y, "y", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  if (!yi.ndim()) throw py::value_error("`y` is required");
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  K<T>().log_rayleigh_prox(ai.data(), yi.data(), ptr(mi), n1 * n2, tau2, gamma, rho, o, threads);
}

void prox_py(const py::object& ao, const py::object& y, const py::object& mask, double tau2,
             double gamma, double rho, py::array out, int threads) {
  py::array a = as_array(ao, "a");
  if (!(tau2 >= 0) || !(rho > 0)) throw py::value_error("need tau2 >= 0 and rho > 0");
  if (is_f64(a)) return prox_t<double>(a, y, mask, tau2, gamma, rho, out, threads);
  if (is_f32(a)) return prox_t<float>(a, y, mask, tau2, gamma, rho, out, threads);
  bad_float(a, "a");
}

template <class T>
std::tuple<double, double, double, double, double> vstep_t(const py::array& v, const py::object& y,
                                           const py::object& w, const py::object& mask,
                                           double tau2, double gamma, double tau3, double dk,
                                           const py::object& grad, const py::object& curv,
                                           int threads) {
  const idx n1 = v.shape(0), n2 = v.shape(1);
  auto vi = input<T>(v, "v", n1, n2);
  auto yi = opt_input<T>(y, "y", n1, n2);
  auto wi = opt_input<T>(w, "w", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  if (!yi.ndim()) throw py::value_error("`y` is required");
  T* go = opt_output<T>(grad, "grad", n1, n2);
  T* co = opt_output<T>(curv, "curv", n1, n2);
  double stats[4];
  double val;
  {
    py::gil_scoped_release nogil;
    val = K<T>().vstep_eval(vi.data(), yi.data(), ptr(wi), ptr(mi), n1, n2, tau2, gamma, tau3, dk, go, co,
                     stats, threads);
  }
  return {val, stats[0], stats[1], stats[2], stats[3]};
}

std::tuple<double, double, double, double, double> vstep_py(const py::object& vo, const py::object& y,
                                            const py::object& w, const py::object& mask,
                                            double tau2, double gamma, double tau3, double dk,
                                            const py::object& grad, const py::object& curv,
                                            int threads) {
  py::array v = as_array(vo, "v");
  if (is_f64(v)) return vstep_t<double>(v, y, w, mask, tau2, gamma, tau3, dk, grad, curv, threads);
  if (is_f32(v)) return vstep_t<float>(v, y, w, mask, tau2, gamma, tau3, dk, grad, curv, threads);
  bad_float(v, "v");
}

template <class T>
std::tuple<double, double, double> diff_stats_t(const py::array& a, const py::object& b,
                                                const py::object& c, const py::object& mask,
                                                int threads) {
  const idx n1 = a.shape(0), n2 = a.shape(1);
  auto ai = input<T>(a, "a", n1, n2);
  auto bi = opt_input<T>(b, "b", n1, n2);
  auto ci = opt_input<T>(c, "c", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  if (!bi.ndim()) throw py::value_error("`b` is required");
  double out[3];
  {
    py::gil_scoped_release nogil;
    K<T>().diff_stats(ai.data(), bi.data(), ptr(ci), ptr(mi), n1, n2, out, threads);
  }
  return {out[0], out[1], out[2]};
}

std::tuple<double, double, double> diff_stats_py(const py::object& ao, const py::object& b,
                                                 const py::object& c, const py::object& mask,
                                                 int threads) {
  py::array a = as_array(ao, "a");
  if (is_f64(a)) return diff_stats_t<double>(a, b, c, mask, threads);
  if (is_f32(a)) return diff_stats_t<float>(a, b, c, mask, threads);
  bad_float(a, "a");
}

template <class T>
double dot_t(const py::array& a, const py::object& b, int threads) {
  const idx n1 = a.shape(0), n2 = a.shape(1);
  auto ai = input<T>(a, "a", n1, n2);
  auto bi = opt_input<T>(b, "b", n1, n2);
  if (!bi.ndim()) throw py::value_error("`b` is required");
  py::gil_scoped_release nogil;
  return K<T>().dot(ai.data(), bi.data(), n1, n2, threads);
}

double dot_py(const py::object& ao, const py::object& b, int threads) {
  py::array a = as_array(ao, "a");
  if (is_f64(a)) return dot_t<double>(a, b, threads);
  if (is_f32(a)) return dot_t<float>(a, b, threads);
  bad_float(a, "a");
}

template <class T>
void prox_target_t(const py::array& v, const py::object& f, const py::object& mask, double alpha,
                   py::array& out, int threads) {
  const idx n1 = v.shape(0), n2 = v.shape(1);
  auto vi = input<T>(v, "v", n1, n2);
  auto fi = opt_input<T>(f, "f", n1, n2);
  auto mi = opt_input<T>(mask, "mask", n1, n2);
  if (!fi.ndim()) throw py::value_error("`f` is required");
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  K<T>().prox_target(vi.data(), fi.data(), ptr(mi), n1 * n2, alpha, o, threads);
}

void prox_target_py(const py::object& vo, const py::object& f, const py::object& mask,
                    double alpha, py::array out, int threads) {
  py::array v = as_array(vo, "v");
  if (is_f64(v)) return prox_target_t<double>(v, f, mask, alpha, out, threads);
  if (is_f32(v)) return prox_target_t<float>(v, f, mask, alpha, out, threads);
  bad_float(v, "v");
}

template <class T>
void xstep_t(const py::array& Rm, const py::object& Xk, const py::object& Gk, const py::object& Lam,
             const py::object& dtd, idx n2, idx s, double tau1, double L, const py::object& Tw,
             py::array& X, const py::object& X2, int threads) {
  using C = std::complex<T>;
  const idx n1 = Rm.shape(0), h2 = Rm.shape(1);
  if (n2 / 2 + 1 != h2) throw py::value_error("`n2` does not match the half-spectrum width");
  const SpectralGrid sg(n1, n2, s);
  auto ri = input<C>(Rm, "Rm", n1, h2);
  auto xi = opt_input<C>(Xk, "Xk", n1, h2);
  auto gi = opt_input<C>(Gk, "Gk", n1, h2);
  auto li = opt_input<C>(Lam, "Lam", n1, h2);
  auto di = opt_input<T>(dtd, "dtd", n1, h2);
  if (!li.ndim() || !di.ndim()) throw py::value_error("`Lam` and `dtd` are required");
  C* tw = opt_output<C>(Tw, "Twork", sg.m1, sg.mh2);
  if (!tw) throw py::value_error("`Twork` is required");
  C* xo = output<C>(X, "X", n1, h2);
  C* x2 = opt_output<C>(X2, "X2", n1, h2);
  if (!(L > 0) || !(tau1 >= 0)) throw py::value_error("need L > 0 and tau1 >= 0");
  py::gil_scoped_release nogil;
  K<T>().xstep_solve(ri.data(), ptr(xi), ptr(gi), li.data(), di.data(), sg, tau1, L, tw, xo, x2, threads);
}

void xstep_py(const py::object& Rmo, const py::object& Xk, const py::object& Gk,
              const py::object& Lam, const py::object& dtd, idx n2, idx s, double tau1, double L,
              const py::object& Tw, py::array X, const py::object& X2, int threads) {
  py::array Rm = as_array(Rmo, "Rm");
  if (s < 1) throw py::value_error("`s` must be >= 1");
  if (Rm.dtype().equal(py::dtype::of<std::complex<double>>()))
    return xstep_t<double>(Rm, Xk, Gk, Lam, dtd, n2, s, tau1, L, Tw, X, X2, threads);
  if (Rm.dtype().equal(py::dtype::of<std::complex<float>>()))
    return xstep_t<float>(Rm, Xk, Gk, Lam, dtd, n2, s, tau1, L, Tw, X, X2, threads);
  throw py::type_error("`Rm` must be complex64 or complex128");
}

template <class T>
double axpby_t(const py::array& a, const py::object& b, double alpha, double beta, py::array& out,
               int threads) {
  if (a.ndim() != 2) throw py::value_error("`a` must be 2-D, got shape " + shape_str(a));
  const idx n1 = a.shape(0), n2 = a.shape(1);
  auto ai = input<T>(a, "a", n1, n2);
  auto bi = opt_input<T>(b, "b", n1, n2);
  if (!bi.ndim()) throw py::value_error("`b` is required");
  T* o = output<T>(out, "out", n1, n2);
  py::gil_scoped_release nogil;
  return K<T>().axpby(ai.data(), bi.data(), n1, n2, alpha, beta, o, threads);
}

double axpby_py(const py::object& ao, const py::object& b, double alpha, double beta,
                py::array out, int threads) {
  py::array a = as_array(ao, "a");
  if (is_f64(a)) return axpby_t<double>(a, b, alpha, beta, out, threads);
  if (is_f32(a)) return axpby_t<float>(a, b, alpha, beta, out, threads);
  bad_float(a, "a");
}

template <class T>
void spectral_scale_t(py::array& Z, const py::object& d, double shift, double scale, int threads) {
  using C = std::complex<T>;
  if (Z.ndim() != 2) throw py::value_error("`Z` must be 2-D, got shape " + shape_str(Z));
  const idx n1 = Z.shape(0), h2 = Z.shape(1);
  C* z = output<C>(Z, "Z", n1, h2);
  auto di = opt_input<T>(d, "d", n1, h2);
  if (!di.ndim()) throw py::value_error("`d` is required");
  py::gil_scoped_release nogil;
  K<T>().spectral_scale(z, di.data(), n1, h2, shift, scale, threads);
}

void spectral_scale_py(py::array Z, const py::object& d, double shift, double scale, int threads) {
  if (Z.dtype().equal(py::dtype::of<std::complex<double>>()))
    return spectral_scale_t<double>(Z, d, shift, scale, threads);
  if (Z.dtype().equal(py::dtype::of<std::complex<float>>()))
    return spectral_scale_t<float>(Z, d, shift, scale, threads);
  throw py::type_error("`Z` must be complex64 or complex128");
}

template <class T>
double mr_res_t(const py::array& X, const py::object& Lam, const py::object& Ym, idx n2, idx s,
                int threads) {
  using C = std::complex<T>;
  const idx n1 = X.shape(0), h2 = X.shape(1);
  if (n2 / 2 + 1 != h2) throw py::value_error("`n2` does not match the half-spectrum width");
  const SpectralGrid sg(n1, n2, s);
  auto xi = input<C>(X, "X", n1, h2);
  auto li = opt_input<C>(Lam, "Lam", n1, h2);
  auto yi = opt_input<C>(Ym, "Ym", sg.m1, sg.mh2);
  if (!li.ndim() || !yi.ndim()) throw py::value_error("`Lam` and `Ym` are required");
  py::gil_scoped_release nogil;
  return K<T>().mr_residual_energy(xi.data(), li.data(), yi.data(), sg, threads);
}

double mr_res_py(const py::object& Xo, const py::object& Lam, const py::object& Ym, idx n2, idx s,
                 int threads) {
  py::array X = as_array(Xo, "X");
  if (s < 1) throw py::value_error("`s` must be >= 1");
  if (X.dtype().equal(py::dtype::of<std::complex<double>>())) return mr_res_t<double>(X, Lam, Ym, n2, s, threads);
  if (X.dtype().equal(py::dtype::of<std::complex<float>>())) return mr_res_t<float>(X, Lam, Ym, n2, s, threads);
  throw py::type_error("`X` must be complex64 or complex128");
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

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mrusfusion compiled kernels (private; use the mrusfusion package)";
  const auto none = py::none();
  m.def("build_info", &build_info, "Compiler, flags and OpenMP status of this build.");
  m.def("simd", &simd_name, "Which build of the kernels runs: 'avx2+fma' or 'baseline'.");
  m.def("set_simd", &set_simd, py::arg("name"),
        "Choose the kernels' build: 'avx2' (if compiled and supported) or 'baseline'.");
  m.def("roundtrip", &roundtrip, py::arg("x"), py::arg("threads") = 1,
        "Copy a 2-D float array through the native layer (build check).");
  m.def("gradient", &gradient_py, py::arg("x"), py::arg("mode"), py::arg("uv"), py::arg("uh"),
        py::arg("eps"), py::arg("out"), py::arg("threads") = 1);
  m.def("gradient_adjoint", &gradient_adjoint_py, py::arg("y"), py::arg("uv"), py::arg("uh"),
        py::arg("out"), py::arg("threads") = 1);
  m.def("dtd_apply", &dtd_apply_py, py::arg("p"), py::arg("a_px"), py::arg("a"), py::arg("b"),
        py::arg("out"), py::arg("threads") = 1);
  m.def("squared_gradient_norm", &sqgrad_py, py::arg("x"), py::arg("threads") = 1);
  m.def("coupling_eval", &coupling_eval_py, py::arg("x"), py::arg("coeffs"), py::arg("degree"),
        py::arg("mode"), py::arg("uv"), py::arg("uh"), py::arg("eps"), py::arg("v") = none,
        py::arg("mask") = none, py::arg("f") = none, py::arg("fx") = none, py::arg("fg") = none,
        py::arg("threads") = 1);
  m.def("jacobian_transpose", &jt_py, py::arg("x"), py::arg("r"), py::arg("r_sub"),
        py::arg("mask"), py::arg("fx"), py::arg("fg"), py::arg("mode"), py::arg("uv"),
        py::arg("uh"), py::arg("eps"), py::arg("scale"), py::arg("w1"), py::arg("w2"),
        py::arg("out"), py::arg("threads") = 1);
  m.def("poly_normal_equations", &normal_eq_py, py::arg("x"), py::arg("g"), py::arg("y"),
        py::arg("mask"), py::arg("degree"), py::arg("x_c"), py::arg("x_s"), py::arg("g_s"),
        py::arg("threads") = 1);
  m.def("log_rayleigh_prox", &prox_py, py::arg("a"), py::arg("y"), py::arg("mask"),
        py::arg("tau2"), py::arg("gamma"), py::arg("rho"), py::arg("out"), py::arg("threads") = 1);
  m.def("vstep_eval", &vstep_py, py::arg("v"), py::arg("y"), py::arg("w"), py::arg("mask"),
        py::arg("tau2"), py::arg("gamma"), py::arg("tau3"), py::arg("dk"), py::arg("grad") = none,
        py::arg("curv") = none, py::arg("threads") = 1);
  m.def("diff_stats", &diff_stats_py, py::arg("a"), py::arg("b"), py::arg("c") = none,
        py::arg("mask") = none, py::arg("threads") = 1,
        "(sum (a-b) c, sum m (a-b)^2, sum b^2) in one pass.");
  m.def("dot", &dot_py, py::arg("a"), py::arg("b"), py::arg("threads") = 1,
        "<a, b> of two images, accumulated in double in a fixed order.");
  m.def("prox_target", &prox_target_py, py::arg("v"), py::arg("f"), py::arg("mask"),
        py::arg("alpha"), py::arg("out"), py::arg("threads") = 1,
        "out = v - alpha m (v - f).");
  m.def("xstep_solve", &xstep_py, py::arg("Rm"), py::arg("Xk"), py::arg("Gk"), py::arg("Lam"),
        py::arg("dtd"), py::arg("n2"), py::arg("s"), py::arg("tau1"), py::arg("L"),
        py::arg("Twork"), py::arg("X"), py::arg("X2") = none, py::arg("threads") = 1,
        "Spectrum of the x-step solution into X (and a copy into X2 when given).");
  m.def("axpby", &axpby_py, py::arg("a"), py::arg("b"), py::arg("alpha"), py::arg("beta"),
        py::arg("out"), py::arg("threads") = 1,
        "out = alpha a + beta b in one pass (out may be a or b); returns ||out||^2.");
  m.def("spectral_scale", &spectral_scale_py, py::arg("Z"), py::arg("d"), py::arg("shift"),
        py::arg("scale"), py::arg("threads") = 1, "Z /= (shift + scale d) in place.");
  m.def("mr_residual_energy", &mr_res_py, py::arg("X"), py::arg("Lam"), py::arg("Ym"),
        py::arg("n2"), py::arg("s"), py::arg("threads") = 1);
}
