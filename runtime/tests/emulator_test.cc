// Tests of the CUDA driver emulator (runtime/emulator): hand-written host
// kernels (emulator_kernels.c) launched through its driver calls, right and
// wrong, and what it reports for each wrong one.

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

using CUresult = int;
using CUdeviceptr = unsigned long long;

constexpr CUresult kSuccess = 0, kInvalidValue = 1, kNotFound = 500,
                   kIllegalAddress = 700, kMisaligned = 716,
                   kLaunchFailed = 719;

struct Driver {
  void *lib = nullptr, *kernels = nullptr;
  CUresult (*Init)(unsigned);
  CUresult (*PrimaryCtxRetain)(void **, int);
  CUresult (*PrimaryCtxRelease)(int);
  CUresult (*ModuleLoadDataEx)(void **, const void *, unsigned, int *, void **);
  CUresult (*ModuleUnload)(void *);
  CUresult (*ModuleGetFunction)(void **, void *, const char *);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*MemcpyDtoHAsync)(void *, CUdeviceptr, size_t, void *);
  CUresult (*StreamSynchronize)(void *);
  CUresult (*LaunchKernel)(void *, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, unsigned, void *, void **,
                           void **);
  CUresult (*GetErrorString)(CUresult, const char **);
  CUresult (*StreamCreate)(void **, unsigned);
  CUresult (*BeginCapture)(void *, int);
  CUresult (*EndCapture)(void *, void **);
  CUresult (*Instantiate)(void **, void *, unsigned long long);
  CUresult (*GraphLaunch)(void *, void *);
  CUresult (*GraphExecDestroy)(void *);
  CUresult (*GraphDestroy)(void *);

  template <typename F> void sym(F &fn, const char *name) {
    fn = reinterpret_cast<F>(dlsym(lib, name));
    ASSERT_NE(fn, nullptr) << name;
  }
  void open() {
    lib = dlopen(BITNET_CUDA_EMULATOR_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << dlerror();
    kernels = dlopen(BITNET_EMULATOR_KERNELS_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(kernels, nullptr) << dlerror();
    sym(Init, "cuInit");
    sym(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    sym(PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    sym(ModuleLoadDataEx, "cuModuleLoadDataEx");
    sym(ModuleUnload, "cuModuleUnload");
    sym(ModuleGetFunction, "cuModuleGetFunction");
    sym(MemAlloc, "cuMemAlloc_v2");
    sym(MemFree, "cuMemFree_v2");
    sym(MemcpyHtoD, "cuMemcpyHtoD_v2");
    sym(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    sym(StreamSynchronize, "cuStreamSynchronize");
    sym(LaunchKernel, "cuLaunchKernel");
    sym(GetErrorString, "cuGetErrorString");
    sym(StreamCreate, "cuStreamCreate");
    sym(BeginCapture, "cuStreamBeginCapture_v2");
    sym(EndCapture, "cuStreamEndCapture");
    sym(Instantiate, "cuGraphInstantiateWithFlags");
    sym(GraphLaunch, "cuGraphLaunch");
    sym(GraphExecDestroy, "cuGraphExecDestroy");
    sym(GraphDestroy, "cuGraphDestroy");
  }
};

class Emulator : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(d.open());
    ASSERT_EQ(d.Init(0), kSuccess);
    void *context = nullptr;
    ASSERT_EQ(d.PrimaryCtxRetain(&context, 0), kSuccess);
    const void *ptx = dlsym(d.kernels, "bitnet_emu_test_ptx");
    ASSERT_NE(ptx, nullptr);
    ASSERT_EQ(d.ModuleLoadDataEx(&module, ptx, 0, nullptr, nullptr), kSuccess);
  }
  void TearDown() override {
    for (CUdeviceptr p : allocations)
      d.MemFree(p);
    if (module)
      d.ModuleUnload(module);
    // The last release clears a failed launch's sticky error.
    d.PrimaryCtxRelease(0);
  }
  CUdeviceptr alloc(size_t bytes) {
    CUdeviceptr p = 0;
    EXPECT_EQ(d.MemAlloc(&p, bytes), kSuccess);
    allocations.push_back(p);
    return p;
  }
  void *function(const char *name) {
    void *f = nullptr;
    EXPECT_EQ(d.ModuleGetFunction(&f, module, name), kSuccess) << name;
    return f;
  }
  /// Launches `name` over (in, out) on `blocks` blocks of `threads`.
  CUresult launch(const char *name, CUdeviceptr in, CUdeviceptr out,
                  unsigned blocks, unsigned threads) {
    void *f = function(name);
    void *params[] = {&in, &out};
    return d.LaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, nullptr, params,
                          nullptr);
  }
  std::string message(CUresult r) {
    const char *text = nullptr;
    d.GetErrorString(r, &text);
    return text ? text : "";
  }
  /// Whether the message of `r` contains `text` (it is shown when not).
  ::testing::AssertionResult says(CUresult r, const std::string &text) {
    std::string m = message(r);
    if (m.find(text) != std::string::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "the message \"" << m << "\" lacks \"" << text << "\"";
  }

  Driver d;
  void *module = nullptr;
  std::vector<CUdeviceptr> allocations;
};

TEST_F(Emulator, RunsAKernelOverDeviceMemory) {
  CUdeviceptr in = alloc(256), out = alloc(256);
  std::vector<float> x(64), y(64, 0.0f);
  for (int i = 0; i < 64; ++i)
    x[i] = 0.5f * i - 3;
  ASSERT_EQ(d.MemcpyHtoD(in, x.data(), 256), kSuccess);
  ASSERT_EQ(launch("copy", in, out, 1, 64), kSuccess);
  ASSERT_EQ(d.StreamSynchronize(nullptr), kSuccess);
  ASSERT_EQ(d.MemcpyDtoHAsync(y.data(), out, 256, nullptr), kSuccess);
  EXPECT_EQ(x, y);
}

TEST_F(Emulator, DeviceMemoryStartsUninitialised) {
  CUdeviceptr p = alloc(8);
  uint32_t got[2] = {0, 0};
  ASSERT_EQ(d.MemcpyDtoHAsync(got, p, 8, nullptr), kSuccess);
  EXPECT_EQ(got[0], 0xffffffffu);
  EXPECT_EQ(got[1], 0xffffffffu);
}

TEST_F(Emulator, ChecksCopiesAndParameters) {
  CUdeviceptr small = alloc(128), out = alloc(256);
  std::vector<char> bytes(256);
  EXPECT_EQ(d.MemcpyHtoD(small, bytes.data(), 256), kInvalidValue);
  EXPECT_TRUE(says(kInvalidValue, "not inside one allocation"));
  // A parameter that does not hold the kernel's 256 bytes.
  EXPECT_EQ(launch("copy", small, out, 1, 64), kIllegalAddress);
  EXPECT_TRUE(says(kIllegalAddress, "parameter 0"));
}

TEST_F(Emulator, ChecksAlignmentAndBlockSize) {
  CUdeviceptr in = alloc(512), out = alloc(256);
  // copy's input is read with 16-byte vector loads.
  EXPECT_EQ(launch("copy", in + 4, out, 1, 64), kMisaligned);
  EXPECT_EQ(d.PrimaryCtxRelease(0), kSuccess);
  void *context = nullptr;
  ASSERT_EQ(d.PrimaryCtxRetain(&context, 0), kSuccess);
  // It was built for blocks of 64 threads.
  EXPECT_EQ(launch("copy", in, out, 1, 32), kInvalidValue);
  EXPECT_TRUE(says(kInvalidValue, "built for blocks of (64, 1, 1)"));
}

TEST_F(Emulator, AFaultIsStickyUntilTheContextIsReleased) {
  CUdeviceptr in = alloc(4), out = alloc(4);
  EXPECT_EQ(launch("oob", in, out, 1, 32), kIllegalAddress);
  EXPECT_TRUE(says(kIllegalAddress, "thread 5: memref.store out of bounds"));
  EXPECT_EQ(d.StreamSynchronize(nullptr), kIllegalAddress);
  CUdeviceptr p = 0;
  EXPECT_EQ(d.MemAlloc(&p, 16), kIllegalAddress);
  EXPECT_EQ(d.PrimaryCtxRelease(0), kSuccess);
  void *context = nullptr;
  ASSERT_EQ(d.PrimaryCtxRetain(&context, 0), kSuccess);
  EXPECT_EQ(d.StreamSynchronize(nullptr), kSuccess);
}

TEST_F(Emulator, ReportsABarrierNotEveryThreadReaches) {
  CUdeviceptr in = alloc(4), out = alloc(4);
  EXPECT_EQ(launch("divergent_barrier", in, out, 1, 32), kLaunchFailed);
  EXPECT_TRUE(says(kLaunchFailed, "16 of 32 threads wait at a barrier"));
}

TEST_F(Emulator, ShufflesAsTheGPUDoes) {
  CUdeviceptr in = alloc(4), out = alloc(1024);
  ASSERT_EQ(launch("warp_shuffles", in, out, 1, 64), kSuccess);
  std::vector<int32_t> got(256);
  ASSERT_EQ(d.MemcpyDtoHAsync(got.data(), out, 1024, nullptr), kSuccess);
  for (int t = 0; t < 64; ++t) {
    int lane = t % 32;
    EXPECT_EQ(got[4 * t], 496) << t;                             // 0 + ... + 31
    EXPECT_EQ(got[4 * t + 1], lane == 31 ? 31 : lane + 1) << t;  // down 1
    EXPECT_EQ(got[4 * t + 2], lane == 0 ? 0 : lane - 1) << t;    // up 1
    EXPECT_EQ(got[4 * t + 3], 3) << t;                           // idx 3
  }
}

TEST_F(Emulator, ReportsAShuffleNotEveryLaneReaches) {
  CUdeviceptr in = alloc(4), out = alloc(4);
  EXPECT_EQ(launch("divergent_shuffle", in, out, 1, 32), kLaunchFailed);
  EXPECT_TRUE(says(kLaunchFailed, "16 of its 32 lanes wait at a shuffle"));
}

TEST_F(Emulator, ReportsARaceOnWorkgroupMemory) {
  CUdeviceptr in = alloc(4), out = alloc(256);
  ASSERT_EQ(launch("shared_ordered", in, out, 1, 64), kSuccess);
  std::vector<float> got(64);
  ASSERT_EQ(d.MemcpyDtoHAsync(got.data(), out, 256, nullptr), kSuccess);
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(got[i], (float)((i + 1) % 64));
  EXPECT_EQ(launch("shared_race", in, out, 1, 64), kLaunchFailed);
  // Thread 0 read its neighbour's slot before thread 1 wrote it.
  EXPECT_TRUE(says(kLaunchFailed, "workgroup array: thread 1 writes it "
                                   "after thread 0 read it"));
}

TEST_F(Emulator, ReportsBlocksWritingTheSameBytes) {
  CUdeviceptr in = alloc(4), out = alloc(4);
  ASSERT_EQ(launch("block_race", in, out, 1, 32), kSuccess);
  // A later launch is ordered after it: no race.
  ASSERT_EQ(launch("block_race", in, out, 1, 32), kSuccess);
  EXPECT_EQ(launch("block_race", in, out, 2, 32), kLaunchFailed);
  EXPECT_TRUE(says(kLaunchFailed, "after another block of the launch "
                                   "wrote it"));
}

// Tests the coalescing profile: a warp reading one float per 32-byte sector
// uses 4 of every 32 bytes moved; its coalesced store uses them all.
TEST_F(Emulator, ProfileCountsSectorsAgainstBytesUsed) {
  // Read at every launch; unset again so that later tests do not profile.
  setenv("BITNET_CUDA_EMULATOR_PROFILE", "1", 1);
  auto profileText = reinterpret_cast<size_t (*)(char *, size_t)>(
      dlsym(d.lib, "bitnet_cuda_emulator_profile"));
  ASSERT_NE(profileText, nullptr);
  CUdeviceptr in = alloc(1024), out = alloc(128);
  ASSERT_EQ(launch("strided", in, out, 1, 32), kSuccess);
  unsetenv("BITNET_CUDA_EMULATOR_PROFILE");
  std::vector<char> text(4096);
  profileText(text.data(), text.size());
  std::string got = text.data();
  // kernel, parameter, launches, load used, moved, eff, store used, moved, eff.
  EXPECT_NE(got.find("strided"), std::string::npos) << got;
  std::istringstream lines(got);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string kernel, param;
    long long launches, loadUsed, loadMoved, storeUsed, storeMoved;
    std::string loadEff, storeEff;
    if (!(fields >> kernel >> param >> launches >> loadUsed >> loadMoved >>
          loadEff >> storeUsed >> storeMoved >> storeEff) ||
        kernel != "strided")
      continue;
    ++rows;
    if (param == "0") {
      EXPECT_EQ(loadUsed, 128) << line;   // 32 floats
      EXPECT_EQ(loadMoved, 1024) << line; // 32 sectors
      EXPECT_EQ(loadEff, "12.5%") << line;
    } else {
      EXPECT_EQ(param, "1") << line;
      EXPECT_EQ(storeUsed, 128) << line;
      EXPECT_EQ(storeMoved, 128) << line;
      EXPECT_EQ(storeEff, "100.0%") << line;
    }
  }
  EXPECT_EQ(rows, 2) << got;
}

// Tests graphs: launches on a captured stream are recorded with their
// parameters' values, not run, and each launch of the instantiated graph
// runs them; copies on the captured stream and its synchronisation during
// the capture are refused.
TEST_F(Emulator, CapturesAndReplaysGraphs) {
  void *stream = nullptr;
  ASSERT_EQ(d.StreamCreate(&stream, 1), kSuccess);
  CUdeviceptr in = alloc(256), out = alloc(256);
  std::vector<float> x(64, 2.5f), y(64, 0.0f);
  ASSERT_EQ(d.MemcpyHtoD(in, x.data(), 256), kSuccess);
  ASSERT_EQ(d.BeginCapture(stream, 2), kSuccess);
  void *f = function("copy");
  CUdeviceptr param0 = in, param1 = out;
  void *params[] = {&param0, &param1};
  ASSERT_EQ(d.LaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, stream, params, nullptr),
            kSuccess);
  param0 = 0; // captured by value: changing it later changes nothing
  EXPECT_EQ(d.MemcpyDtoHAsync(y.data(), out, 256, stream), kInvalidValue);
  EXPECT_EQ(d.StreamSynchronize(stream), kInvalidValue);
  void *graph = nullptr, *exec = nullptr;
  ASSERT_EQ(d.EndCapture(stream, &graph), kSuccess);
  ASSERT_EQ(d.Instantiate(&exec, graph, 0), kSuccess);
  ASSERT_EQ(d.GraphDestroy(graph), kSuccess);
  // Nothing ran during the capture.
  ASSERT_EQ(d.MemcpyDtoHAsync(y.data(), out, 256, stream), kSuccess);
  EXPECT_NE(y[0], 2.5f);
  ASSERT_EQ(d.GraphLaunch(exec, stream), kSuccess);
  ASSERT_EQ(d.StreamSynchronize(stream), kSuccess);
  ASSERT_EQ(d.MemcpyDtoHAsync(y.data(), out, 256, stream), kSuccess);
  EXPECT_EQ(x, y);
  EXPECT_EQ(d.GraphExecDestroy(exec), kSuccess);
}

TEST_F(Emulator, NamesAKernelWithoutAHostBuild) {
  void *f = nullptr;
  EXPECT_EQ(d.ModuleGetFunction(&f, module, "missing_host_build"), kNotFound);
  EXPECT_TRUE(says(kNotFound, "--gpu-emulation"));
  EXPECT_EQ(d.ModuleGetFunction(&f, module, "not_in_the_ptx"), kNotFound);
}

TEST_F(Emulator, RefusesAnImageOutsideASharedObject) {
  std::string ptx = ".version 8.0\n";
  void *other = nullptr;
  EXPECT_NE(d.ModuleLoadDataEx(&other, ptx.c_str(), 0, nullptr, nullptr),
            kSuccess);
}

} // namespace
