//===- Module.cpp - The bitnet_mlir native module ----------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Defines `bitnet_mlir._native` and its exception classes:
//
//   Error(Exception)                          base of everything raised here
//   CompileError(Error)                       compiler diagnostics
//   RuntimeError(Error, builtins.RuntimeError) a libbitnet_rt status
//
//===----------------------------------------------------------------------===//

#include "Native.h"

#include "bitnet_rt/bitnet_rt.h"

namespace bitnet_python {

namespace {
// Owned by the module object (added to it below), so they live as long as
// the module; borrowed here.
PyObject *errorType = nullptr;
PyObject *compileErrorType = nullptr;
PyObject *runtimeErrorType = nullptr;

/// Raises `type(message)` with extra attributes set on the instance.
void raiseWith(PyObject *type, const std::string &message,
               std::initializer_list<std::pair<const char *, py::object>> attrs) {
  py::object instance =
      py::reinterpret_borrow<py::object>(type)(toStr(message));
  for (const auto &[name, value] : attrs)
    instance.attr(name) = value;
  PyErr_SetObject(type, instance.ptr());
}
} // namespace

void registerExceptions(py::module_ &m) {
  auto make = [&](const char *name, PyObject *bases, const char *doc) {
    PyObject *type = PyErr_NewExceptionWithDoc(
        (std::string("bitnet_mlir.") + name).c_str(), doc, bases, nullptr);
    if (!type)
      throw py::error_already_set();
    m.add_object(name, py::reinterpret_steal<py::object>(type));
    return type;
  };
  errorType = make("Error", nullptr,
                   "Base class of the errors bitnet_mlir raises.");
  compileErrorType = make(
      "CompileError", errorType,
      "The compiler rejected a model. The message holds the located "
      "diagnostics (file:line:col: error: ...); they are also in "
      "`.diagnostics`.");
  py::tuple runtimeBases =
      py::make_tuple(py::reinterpret_borrow<py::object>(errorType),
                     py::module_::import("builtins").attr("RuntimeError"));
  runtimeErrorType = make(
      "RuntimeError", runtimeBases.ptr(),
      "libbitnet_rt reported an error. `.code` is the runtime's status code "
      "(an int) and `.code_name` its name, e.g. 'INVALID_MODEL'.");

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p)
        std::rethrow_exception(p);
    } catch (const CompileFailure &e) {
      raiseWith(compileErrorType, e.message,
                {{"diagnostics", toStr(e.diagnostics)}});
    } catch (const StatusFailure &e) {
      raiseWith(runtimeErrorType, e.message,
                {{"code", py::int_(e.code)},
                 {"code_name", toStr(e.codeName)}});
    }
  });
}

} // namespace bitnet_python

PYBIND11_MODULE(_native, m) {
  m.doc() = "Native part of bitnet_mlir: the compiler library and "
            "libbitnet_rt. Use the bitnet_mlir package, not this module.";
  bitnet_python::registerExceptions(m);
  bitnet_python::bindCompiler(m);
  bitnet_python::bindRuntime(m);
  m.attr("runtime_version") = bitnet_rt_version();
}
