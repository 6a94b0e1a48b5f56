//===- GPUTest.cpp - GPU models against the scalar reference ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Compiles every GPU case (GPUCases.h) with `--target=nvptx`, checks it
// against the compiled model's descriptor, runs it through libbitnet_rt on
// the GPU and compares with the values the case expects. The runs are
// skipped, with the reason, where there is no CUDA driver or GPU; the checks
// that need no GPU (the descriptor, a GPU model's entry point refusing to run
// without the loader, loading reporting UNAVAILABLE, the decoder's CPU
// reference) run everywhere. bitnet-gpu-check runs the same cases from
// files, on a machine without the compiler.
//
//===----------------------------------------------------------------------===//

#include "GPUCases.h"
#include "ModelHarness.h"

#include "bitnet_rt/bitnet_rt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>

using namespace bitnet::test;

namespace {

std::string gpuArch() {
  const char *env = std::getenv("BITNET_TEST_GPU_ARCH");
  return env && *env ? env : "sm_80";
}

/// $BITNET_TEST_GPU_EMULATION names the CUDA driver emulator
/// (libbitnet_cuda_emulator.so, ctest's Emulated.* tests): the models also
/// hold host builds of their kernels, the runtime loads the emulator in
/// place of libcuda.so.1 ($BITNET_CUDA_DRIVER, set here before the runtime
/// first looks), and the runs may not skip.
const char *emulator() {
  const char *env = std::getenv("BITNET_TEST_GPU_EMULATION");
  return env && *env ? env : nullptr;
}
const bool emulatorChosen = [] {
  if (emulator())
    setenv("BITNET_CUDA_DRIVER", emulator(), 1);
  return emulator() != nullptr;
}();

/// Whether a missing GPU fails the tests instead of skipping them
/// ($BITNET_TEST_REQUIRE_GPU, or the emulator).
bool gpuRequired() {
  const char *env = std::getenv("BITNET_TEST_REQUIRE_GPU");
  return emulatorChosen || (env && *env && std::string(env) != "0");
}

/// Graph launches the emulator has run in this process (0 without it).
long long emulatorGraphLaunches() {
  if (!emulatorChosen)
    return 0;
  // The runtime has it open already: the same handle.
  void *lib = dlopen(emulator(), RTLD_NOW | RTLD_NOLOAD);
  if (!lib)
    return 0;
  auto count = reinterpret_cast<long long (*)()>(
      dlsym(lib, "bitnet_cuda_emulator_graph_launches"));
  long long n = count ? count() : 0;
  dlclose(lib);
  return n;
}

/// The flags of a GPU build (with the host kernels under the emulator).
std::vector<std::string> gpuFlags(const std::string &arch) {
  std::vector<std::string> flags{"--target=nvptx", "--gpu-arch=" + arch};
  if (emulatorChosen)
    flags.push_back("--gpu-emulation");
  return flags;
}

/// A model loaded into a context through libbitnet_rt.
struct Loaded {
  bitnet_model *model = nullptr;
  bitnet_context *context = nullptr;
  ~Loaded() {
    bitnet_context_free(context);
    bitnet_model_release(model);
  }
  /// Loads `path`; the error message, empty on success.
  std::string load(const std::string &path) {
    bitnet_status st = bitnet_model_load(path.c_str(), &model);
    if (!st)
      st = bitnet_context_create(model, nullptr, &context);
    std::string message = st ? bitnet_status_message(st) : "";
    bitnet_status_free(st);
    return message;
  }
};

std::unique_ptr<CompiledModel> compileCase(const bitnet::gpu::Case &c,
                                           std::vector<std::string> flags,
                                           std::string &error) {
  flags.insert(flags.end(), c.flags.begin(), c.flags.end());
  if (std::find(flags.begin(), flags.end(), "--target=nvptx") != flags.end())
    flags.insert(flags.end(), c.gpuFlags.begin(), c.gpuFlags.end());
  return c.mlir.empty() ? CompiledModel::compileFile(c.sourceFile, flags, error)
                        : CompiledModel::compile(c.mlir, flags, error);
}

std::string lines(const std::vector<std::string> &list) {
  std::string s;
  for (const std::string &line : list)
    s += line + "\n";
  return s;
}

class GPUCase : public ::testing::TestWithParam<std::string> {};

TEST_P(GPUCase, MatchesReference) {
  std::optional<bitnet::gpu::Case> c = gpuCase(GetParam());
  ASSERT_TRUE(c);
  std::string error;
  auto compiled = compileCase(*c, gpuFlags(gpuArch()), error);
  ASSERT_TRUE(compiled) << error;
  const bitnet_model_info &info = compiled->info();
  ASSERT_NE(info.gpu, nullptr);
  EXPECT_EQ(lines(bitnet::gpu::checkCase(*c, info)), "");

  // Without the loader, a GPU model's entry point refuses to run.
  std::vector<std::vector<char>> storage;
  std::vector<void *> buffers;
  for (int32_t b = 0; b < info.num_inputs + info.num_outputs; ++b) {
    const bitnet_tensor_info &t =
        b < info.num_inputs ? info.inputs[b] : info.outputs[b - info.num_inputs];
    int64_t bytes = bitnet_dtype_size(t.dtype);
    for (int32_t d = 0; d < t.rank; ++d)
      bytes *= t.shape[d];
    storage.emplace_back(bytes);
    buffers.push_back(storage.back().data());
  }
  EXPECT_EQ(compiled->run(buffers), BITNET_MODEL_RUN_NEEDS_GPU_LOADER);

  // The expected values of a case checked against the CPU build, recorded
  // from it (no GPU needed).
  if (c->cpuReference) {
    auto cpu = compileCase(*c, {}, error);
    ASSERT_TRUE(cpu) << error;
    Loaded reference;
    ASSERT_EQ(reference.load(cpu->path()), "");
    ASSERT_EQ(lines(bitnet::gpu::runCase(*c, reference.context, /*record=*/true)), "");
  }

  bitnet_status avail = bitnet_gpu_available();
  if (avail != BITNET_OK) {
    std::string why = bitnet_status_message(avail);
    bitnet_status_free(avail);
    if (gpuRequired())
      FAIL() << "no GPU, and BITNET_TEST_REQUIRE_GPU is set: " << why;
    GTEST_SKIP() << "no GPU: " << why;
  }
  Loaded loaded;
  ASSERT_EQ(loaded.load(compiled->path()), "");
  long long graphsBefore = emulatorGraphLaunches();
  EXPECT_EQ(lines(bitnet::gpu::runCase(*c, loaded.context)), "");
  // Whole runs of two launches or more go through one captured graph each
  // (the emulator counts).
  if (emulatorChosen && info.gpu->num_launches >= 2) {
    EXPECT_GT(emulatorGraphLaunches(), graphsBefore);
  }
}

INSTANTIATE_TEST_SUITE_P(All, GPUCase, ::testing::ValuesIn(gpuCaseNames()),
                         [](const ::testing::TestParamInfo<std::string> &info) {
                           return info.param;
                         });

TEST(GPUModel, LoadWithoutGPUIsUnavailable) {
  bitnet_status avail = bitnet_gpu_available();
  if (avail == BITNET_OK)
    GTEST_SKIP() << "this machine has a GPU";
  bitnet_status_free(avail);
  std::string error;
  auto compiled =
      compileCase(*gpuCase("bitlinear_1x64x64"), gpuFlags("sm_90"), error);
  ASSERT_TRUE(compiled) << error;
  bitnet_model *model = nullptr;
  bitnet_status st = bitnet_model_load(compiled->path().c_str(), &model);
  EXPECT_EQ(bitnet_status_get_code(st), BITNET_STATUS_UNAVAILABLE);
  EXPECT_NE(std::string(bitnet_status_message(st)).find("GPU model"),
            std::string::npos)
      << bitnet_status_message(st);
  bitnet_status_free(st);
  EXPECT_EQ(model, nullptr);
}

} // namespace
