//===- ModelHarness.cpp - Compile, load and run a model in tests -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "ModelHarness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace bitnet::test {

static std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<CompiledModel>
CompiledModel::compile(const std::string &mlir,
                       const std::vector<std::string> &flags,
                       std::string &error) {
  return build(&mlir, "", flags, error);
}

std::unique_ptr<CompiledModel>
CompiledModel::compileFile(const std::string &path,
                           const std::vector<std::string> &flags,
                           std::string &error) {
  return build(nullptr, path, flags, error);
}

std::unique_ptr<CompiledModel>
CompiledModel::build(const std::string *mlir, const std::string &path,
                     const std::vector<std::string> &flags,
                     std::string &error) {
  char dirTemplate[] = "/tmp/bitnet-test-XXXXXX";
  if (!mkdtemp(dirTemplate)) {
    error = "mkdtemp failed";
    return nullptr;
  }
  std::unique_ptr<CompiledModel> model(new CompiledModel());
  model->dir = dirTemplate;
  std::string input = mlir ? model->dir + "/model.mlir" : path;
  std::string output = model->dir + "/model.so";
  std::string log = model->dir + "/compile.log";
  if (mlir)
    std::ofstream(input) << *mlir;
  std::string command = std::string(BITNET_COMPILE_PATH) + " " + input +
                        " -o " + output;
  for (const std::string &flag : flags)
    command += " " + flag;
  command += " > " + log + " 2>&1";
  if (std::system(command.c_str()) != 0) {
    error = command + "\n" + readFile(log);
    return nullptr;
  }
  model->handle = dlopen(output.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!model->handle) {
    error = dlerror();
    return nullptr;
  }
  model->modelInfo = static_cast<const bitnet_model_info *>(
      dlsym(model->handle, BITNET_MODEL_INFO_SYMBOL));
  model->runFn = reinterpret_cast<bitnet_model_run_fn>(
      dlsym(model->handle, BITNET_MODEL_RUN_SYMBOL));
  if (!model->modelInfo || !model->runFn) {
    error = "the shared object lacks the model ABI symbols";
    return nullptr;
  }
  return model;
}

CompiledModel::~CompiledModel() {
  if (handle)
    dlclose(handle);
  if (!dir.empty()) {
    for (const char *file : {"/model.mlir", "/model.so", "/compile.log"})
      unlink((dir + file).c_str());
    rmdir(dir.c_str());
  }
}

int32_t CompiledModel::run(const std::vector<void *> &buffers) const {
  size_t bytes = static_cast<size_t>(modelInfo->workspace_bytes);
  size_t align = static_cast<size_t>(modelInfo->workspace_alignment);
  void *workspace = nullptr;
  if (bytes > 0) {
    // Poison the workspace: a kernel that reads memory it never wrote fails.
    workspace = std::aligned_alloc(align, (bytes + align - 1) / align * align);
    std::memset(workspace, 0xA5, bytes);
  }
  int32_t rc = runFn(buffers.data(), workspace, nullptr);
  std::free(workspace);
  return rc;
}

::testing::AssertionResult bitEqual(const std::vector<float> &expected,
                                    const float *actual) {
  for (size_t i = 0; i < expected.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &expected[i], 4);
    std::memcpy(&b, &actual[i], 4);
    if (a != b)
      return ::testing::AssertionFailure()
             << "element " << i << ": expected " << expected[i] << " got "
             << actual[i];
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult near(const std::vector<float> &expected,
                                const float *actual, float tolerance) {
  for (size_t i = 0; i < expected.size(); ++i) {
    float scale = std::max(1.0f, std::fabs(expected[i]));
    if (!(std::fabs(expected[i] - actual[i]) <= tolerance * scale))
      return ::testing::AssertionFailure()
             << "element " << i << ": expected " << expected[i] << " got "
             << actual[i] << " (tolerance " << tolerance << " relative)";
  }
  return ::testing::AssertionSuccess();
}

} // namespace bitnet::test
