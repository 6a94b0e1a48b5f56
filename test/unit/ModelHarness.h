//===- ModelHarness.h - Compile, load and run a model in tests --*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TEST_UNIT_MODELHARNESS_H
#define BITNET_TEST_UNIT_MODELHARNESS_H

#include "ModelText.h"
#include "bitnet_rt/model_abi.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace bitnet::test {

/// A model compiled by `bitnet-compile --emit=so` from MLIR text and loaded
/// with dlopen, exactly as a user would do it.
class CompiledModel {
public:
  /// Compiles `mlir` with the extra `flags`; on failure returns null and
  /// puts bitnet-compile's output in `error`.
  static std::unique_ptr<CompiledModel>
  compile(const std::string &mlir, const std::vector<std::string> &flags,
          std::string &error);
  /// Compiles the model file at `path` (.mlir or .onnx) likewise.
  static std::unique_ptr<CompiledModel>
  compileFile(const std::string &path, const std::vector<std::string> &flags,
              std::string &error);
  ~CompiledModel();

  const bitnet_model_info &info() const { return *modelInfo; }
  /// Path of the compiled shared object (removed with this object).
  std::string path() const { return dir + "/model.so"; }
  /// Runs with inputs then outputs, using a fresh workspace.
  int32_t run(const std::vector<void *> &buffers) const;

private:
  CompiledModel() = default;
  /// Compiles `*mlir` (written to a file) or, when null, the file `path`.
  static std::unique_ptr<CompiledModel>
  build(const std::string *mlir, const std::string &path,
        const std::vector<std::string> &flags, std::string &error);
  std::string dir;
  void *handle = nullptr;
  const bitnet_model_info *modelInfo = nullptr;
  bitnet_model_run_fn runFn = nullptr;
};

/// Equal bit patterns (so -0 != +0 and NaNs compare by payload).
::testing::AssertionResult bitEqual(const std::vector<float> &expected,
                                    const float *actual);

/// |expected - actual| <= tolerance * max(1, |expected|) everywhere.
::testing::AssertionResult near(const std::vector<float> &expected,
                                const float *actual, float tolerance);

} // namespace bitnet::test

#endif // BITNET_TEST_UNIT_MODELHARNESS_H
