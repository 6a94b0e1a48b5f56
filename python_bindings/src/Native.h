//===- Native.h - The bitnet_mlir native module ------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Pieces of the `bitnet_mlir._native` extension module: the compiler entry
// point (Compile.cpp), the runtime objects (Runtime.cpp) and the exceptions
// they raise (Module.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_PYTHON_NATIVE_H
#define BITNET_PYTHON_NATIVE_H

#include <pybind11/pybind11.h>

#include <string>

namespace bitnet_python {

namespace py = pybind11;

/// Thrown when compilation fails; becomes bitnet_mlir.CompileError with the
/// located diagnostics in its message and in `.diagnostics`.
struct CompileFailure {
  std::string message;
  std::string diagnostics;
};

/// Thrown for an error status of libbitnet_rt; becomes
/// bitnet_mlir.RuntimeError with `.code` (int) and `.code_name` (str).
struct StatusFailure {
  int code;
  std::string codeName;
  std::string message;
};

/// A Python str of UTF-8 `text`, with undecodable bytes replaced (paths and
/// diagnostics may hold any bytes).
inline py::str toStr(const std::string &text) {
  PyObject *s = PyUnicode_DecodeUTF8(text.data(),
                                     static_cast<Py_ssize_t>(text.size()),
                                     "replace");
  if (!s)
    throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

void registerExceptions(py::module_ &m);
void bindCompiler(py::module_ &m);
void bindRuntime(py::module_ &m);

} // namespace bitnet_python

#endif // BITNET_PYTHON_NATIVE_H
