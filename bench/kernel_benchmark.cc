//===- kernel_benchmark.cc - Ternary linear layers against baselines ------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Times compiled bitlinear layers of the bitnet-b1.58-2B-4T shapes and, in the
// same process, the baselines they must beat: OpenBLAS fp32 GEMV/GEMM, a plain
// int8 kernel, the reference path (the oracle the kernels are tested against),
// the AVX2 family of the kernels, the LUT family (table lookups, 1.67 bits a
// weight), a probe of this machine's read bandwidth and one of its int8
// dot-product peak (vpdpbusd). The f16, bf16 and int8 heads (dense GEMV of a
// 65536 x 2560 vocabulary slice, far larger than the caches) are timed against
// the read probe. Each runs with weights hot (in
// cache) and cold (flushed from every cache level before each iteration), on 1
// and 2 threads. At the end a table gives the ratios, and the heads' and the
// prefill kernel's shares of the probes.
//
//   build/bench/bitnet-kernel-bench [--benchmark_filter=...]
//       [--benchmark_repetitions=N]   (the tables take the best repetition)
//
// Models are generated (random ternary weights) and compiled with
// bitnet-compile on first use, into $BITNET_BENCH_DIR (default
// /tmp/bitnet-bench).
//
//===----------------------------------------------------------------------===//

#include "bitnet_rt/bitnet_rt.h"

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <immintrin.h>
#include <link.h>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace {

struct Shape {
  const char *name;
  int64_t n, k;
};

// bitnet-b1.58-2B-4T: q/o, k/v, gate/up, down.
constexpr Shape kShapes[] = {{"qo", 2560, 2560},
                             {"kv", 640, 2560},
                             {"gate_up", 6912, 2560},
                             {"down", 2560, 6912}};

std::string benchDir() {
  const char *dir = std::getenv("BITNET_BENCH_DIR");
  std::string path = dir ? dir : "/tmp/bitnet-bench";
  mkdir(path.c_str(), 0755);
  return path;
}

void fail(const std::string &message) {
  std::fprintf(stderr, "bitnet-kernel-bench: %s\n", message.c_str());
  std::exit(1);
}

void check(bitnet_status status) {
  if (status) {
    std::string message = bitnet_status_message(status);
    bitnet_status_free(status);
    fail(message);
  }
}

/// Appends `byte` as two hex digits (the dense hex form of MLIR constants).
void appendHex(std::string &hex, unsigned byte) {
  static const char digits[] = "0123456789ABCDEF";
  hex += digits[byte >> 4];
  hex += digits[byte & 15];
}

/// Compiles `stem`.mlir, which `writeMLIR` writes on first use, with `flags`
/// into `stem`_`variant`.so, unless that exists and is newer than the
/// compiler (another compiler's kernels, or model ABI, are not this one's);
/// returns the .so.
std::string compileOnce(const std::string &stem, const std::string &variant,
                        const std::string &flags,
                        const std::function<void(FILE *)> &writeMLIR) {
  std::string so = stem + "_" + variant + ".so";
  struct stat st, compiler;
  if (stat(so.c_str(), &st) == 0 &&
      stat(BITNET_COMPILE_PATH, &compiler) == 0 &&
      st.st_mtime > compiler.st_mtime)
    return so;
  std::string mlir = stem + ".mlir";
  if (stat(mlir.c_str(), &st) != 0) {
    FILE *f = std::fopen(mlir.c_str(), "w");
    if (!f)
      fail("cannot write " + mlir);
    writeMLIR(f);
    std::fclose(f);
  }
  std::string command =
      std::string(BITNET_COMPILE_PATH) + " " + mlir + " " + flags + " -o " + so;
  if (std::system(command.c_str()) != 0)
    fail("compilation failed: " + command);
  return so;
}

/// A model of one bitlinear layer with random ternary weights (2-bit
/// storage, hex constant), compiled with `kernels`; returns the .so.
std::string compiledModel(int64_t m, int64_t n, int64_t k,
                          const std::string &kernels) {
  std::string stem = benchDir() + "/linear_" + std::to_string(m) + "x" +
                     std::to_string(n) + "x" + std::to_string(k);
  return compileOnce(stem, kernels, "--kernels=" + kernels, [&](FILE *f) {
    std::mt19937 rng(static_cast<unsigned>(n * 31 + k));
    std::uniform_int_distribution<int> code(0, 2);
    int64_t bytesPerRow = (k + 3) / 4;
    std::string hex;
    hex.reserve(n * bytesPerRow * 2);
    for (int64_t i = 0; i < n * bytesPerRow; ++i) {
      unsigned byte = 0;
      for (int t = 0; t < 4; ++t)
        byte |= static_cast<unsigned>(code(rng)) << (2 * t);
      appendHex(hex, byte);
    }
    std::string x = "tensor<" + std::to_string(m) + "x" + std::to_string(k) + "xf32>";
    std::string y = "tensor<" + std::to_string(m) + "x" + std::to_string(n) + "xf32>";
    std::string t = "!bitnet.ternary<" + std::to_string(n) + "x" + std::to_string(k) + ", i2>";
    std::fprintf(f,
                 "func.func @linear(%%x: %s) -> %s {\n"
                 "  %%w = bitnet.constant dense<\"0x%s\"> : tensor<%lldx%lldxi8> -> %s\n"
                 "  %%s = arith.constant dense<0.0125> : tensor<f32>\n"
                 "  %%y = bitnet.bitlinear %%x, %%w scale %%s : %s, %s, tensor<f32> -> %s\n"
                 "  return %%y : %s\n}\n",
                 x.c_str(), y.c_str(), hex.c_str(), (long long)n,
                 (long long)bytesPerRow, t.c_str(), x.c_str(), t.c_str(),
                 y.c_str(), y.c_str());
  });
}

/// Evicts [begin, end) from every cache level.
void flush(const void *begin, size_t bytes) {
  auto p = reinterpret_cast<uintptr_t>(begin) & ~uintptr_t(63);
  auto end = reinterpret_cast<uintptr_t>(begin) + bytes;
  for (; p < end; p += 64)
    _mm_clflushopt(reinterpret_cast<void *>(p));
  _mm_sfence();
}

/// Flushes the read-only segments (weights) of the shared object at `path`.
void flushObject(const std::string &path) {
  struct Target {
    const char *path;
  } target{path.c_str()};
  dl_iterate_phdr(
      [](struct dl_phdr_info *info, size_t, void *data) {
        auto *t = static_cast<Target *>(data);
        if (!info->dlpi_name || std::strcmp(info->dlpi_name, t->path) != 0)
          return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr) &ph = info->dlpi_phdr[i];
          if (ph.p_type == PT_LOAD && !(ph.p_flags & PF_W))
            flush(reinterpret_cast<const void *>(info->dlpi_addr + ph.p_vaddr),
                  ph.p_memsz);
        }
        return 1;
      },
      &target);
}

/// A compiled model loaded by libbitnet_rt with a pool of `threads` threads.
struct LoadedModel {
  bitnet_model *model = nullptr;
  bitnet_thread_pool *pool = nullptr;
  bitnet_context *context = nullptr;
  std::string path;

  LoadedModel(const std::string &so, int threads) : path(so) {
    check(bitnet_model_load(so.c_str(), &model));
    if (threads > 1)
      check(bitnet_thread_pool_create(threads, &pool));
    bitnet_context_options options = {};
    options.thread_pool = pool;
    check(bitnet_context_create(model, &options, &context));
  }
  ~LoadedModel() {
    bitnet_context_free(context);
    bitnet_thread_pool_release(pool);
    bitnet_model_release(model);
  }
  void run(const float *x, float *y) {
    const void *in[] = {x};
    void *out[] = {y};
    check(bitnet_context_run(context, in, 1, out, 1));
  }
};

std::vector<float> randomActivations(int64_t count) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(count);
  for (float &v : x)
    v = normal(rng);
  return x;
}

void setCounters(benchmark::State &state, int64_t m, int64_t n, int64_t k,
                 double weightBytes) {
  state.counters["weight_GB/s"] = benchmark::Counter(
      weightBytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GOPS"] = benchmark::Counter(
      2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

//===----------------------------------------------------------------------===//
// The compiled kernels (and the reference path)
//===----------------------------------------------------------------------===//

/// Weight bytes a kernel family reads per call.
double weightBytes(const std::string &kernels, Shape shape) {
  if (kernels == "avx512-lut") // per 64 rows: 128 + 160 per 12 columns
    return ((shape.n + 63) / 64) * (128 + (shape.k + 11) / 12 * 160.0);
  return shape.n * shape.k / 4.0;
}

void BM_Compiled(benchmark::State &state, Shape shape, int64_t m,
                 std::string kernels, bool cold) {
  if (kernels == "avx512-lut" && !__builtin_cpu_supports("avx512vbmi")) {
    state.SkipWithError("this CPU lacks AVX-512 VBMI (the LUT kernels)");
    return;
  }
  int threads = static_cast<int>(state.range(0));
  LoadedModel model(compiledModel(m, shape.n, shape.k, kernels), threads);
  std::vector<float> x = randomActivations(m * shape.k), y(m * shape.n);
  model.run(x.data(), y.data());
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      flushObject(model.path);
      state.ResumeTiming();
    }
    model.run(x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  setCounters(state, m, shape.n, shape.k, weightBytes(kernels, shape));
}

/// The decoder head's GEMV: rows of a vocabulary slice (random f16 weights,
/// or bf16 ones for bf16) compiled with `--float-weights=precision` (f16,
/// bf16, int8 or w8a8).
constexpr Shape kHead = {"head", 65536, 2560};

std::string compiledHead(const std::string &precision) {
  bool brain = precision == "bf16";
  std::string stem = benchDir() + "/head_" + std::to_string(kHead.n) + "x" +
                     std::to_string(kHead.k) + (brain ? "_bf16" : "");
  return compileOnce(stem, precision, "--float-weights=" + precision,
                     [&](FILE *f) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::string hex;
    hex.reserve(kHead.n * kHead.k * 4);
    for (int64_t i = 0; i < kHead.n * kHead.k; ++i) {
      // Little-endian 16-bit bytes, as the dense hex form stores them: f16,
      // or bf16 rounded to nearest even.
      float v = normal(rng);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      uint16_t h = brain ? static_cast<uint16_t>(
                               (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
                         : _cvtss_sh(v, 0);
      appendHex(hex, h & 0xFF);
      appendHex(hex, h >> 8);
    }
    std::string x = "tensor<1x" + std::to_string(kHead.k) + "xf32>";
    std::string y = "tensor<1x" + std::to_string(kHead.n) + "xf32>";
    std::string w = "tensor<" + std::to_string(kHead.n) + "x" +
                    std::to_string(kHead.k) + (brain ? "xbf16>" : "xf16>");
    std::fprintf(f,
                 "func.func @head(%%x: %s) -> %s {\n"
                 "  %%w = arith.constant dense<\"0x%s\"> : %s\n"
                 "  %%y = bitnet.dense_matmul %%x, %%w : %s, %s -> %s\n"
                 "  return %%y : %s\n}\n",
                 x.c_str(), y.c_str(), hex.c_str(), w.c_str(), x.c_str(),
                 w.c_str(), y.c_str(), y.c_str());
  });
}

/// The head streams from memory (it is far larger than the caches).
void BM_Head(benchmark::State &state, std::string precision) {
  int threads = static_cast<int>(state.range(0));
  LoadedModel model(compiledHead(precision), threads);
  std::vector<float> x = randomActivations(kHead.k), y(kHead.n);
  model.run(x.data(), y.data());
  for (auto _ : state) {
    model.run(x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  double bytesPerWeight = precision == "f16" || precision == "bf16" ? 2.0 : 1.0;
  // Int8 rows carry a scale each (and, W8A8, a sum of the row).
  setCounters(state, 1, kHead.n, kHead.k,
              kHead.n * kHead.k * bytesPerWeight +
                  (precision == "int8"   ? 4.0 * kHead.n
                   : precision == "w8a8" ? 8.0 * kHead.n
                                         : 0.0));
}

//===----------------------------------------------------------------------===//
// Baselines
//===----------------------------------------------------------------------===//

void BM_OpenBLAS(benchmark::State &state, Shape shape, int64_t m, bool cold) {
  openblas_set_num_threads(static_cast<int>(state.range(0)));
  std::vector<float> w = randomActivations(shape.n * shape.k);
  std::vector<float> x = randomActivations(m * shape.k), y(m * shape.n);
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      flush(w.data(), w.size() * 4);
      state.ResumeTiming();
    }
    if (m == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, shape.n, shape.k, 1.0f,
                  w.data(), shape.k, x.data(), 1, 0.0f, y.data(), 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, shape.n, shape.k,
                  1.0f, x.data(), shape.k, w.data(), shape.k, 0.0f, y.data(),
                  shape.n);
    benchmark::DoNotOptimize(y.data());
  }
  setCounters(state, m, shape.n, shape.k, shape.n * shape.k * 4.0);
}

/// A plain int8 kernel: int8 weights and activations, int32 sums, the loops
/// left to the C++ compiler's vectoriser. One thread.
__attribute__((noinline)) void int8Gemv(const int8_t *w, const int8_t *x,
                                        int32_t *y, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    int32_t sum = 0;
    for (int64_t j = 0; j < k; ++j)
      sum += static_cast<int32_t>(w[i * k + j]) * x[j];
    y[i] = sum;
  }
}

void BM_PlainInt8(benchmark::State &state, Shape shape, bool cold) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> dist(-1, 1);
  std::vector<int8_t> w(shape.n * shape.k), x(shape.k);
  for (int8_t &v : w)
    v = static_cast<int8_t>(dist(rng));
  for (int8_t &v : x)
    v = static_cast<int8_t>(dist(rng) * 100);
  std::vector<int32_t> y(shape.n);
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      flush(w.data(), w.size());
      state.ResumeTiming();
    }
    int8Gemv(w.data(), x.data(), y.data(), shape.n, shape.k);
    benchmark::DoNotOptimize(y.data());
  }
  setCounters(state, 1, shape.n, shape.k, static_cast<double>(shape.n * shape.k));
}

constexpr int64_t kInt8PeakChunks = 64, kInt8PeakIterations = 20000;

/// Reads a buffer far larger than the last-level cache: what memory delivers.
/// The buffer is on 2 MiB pages where transparent huge pages allow, as a
/// compiled model's weights are (bitnet_model_load): a core's prefetchers
/// stop at the end of a page, and on an AMD EPYC Zen 4 the same loop read
/// 19-23 GB/s on 4 KiB pages against 27-31 on 2 MiB ones (one thread).
void BM_ReadBandwidth(benchmark::State &state) {
  int threads = static_cast<int>(state.range(0));
  const size_t bytes = size_t(1) << 30, page = size_t(2) << 20;
  static __m512i *buffer = nullptr;
  if (!buffer) {
    buffer = static_cast<__m512i *>(std::aligned_alloc(page, bytes));
    madvise(buffer, bytes, MADV_HUGEPAGE); // advice: 4 KiB pages otherwise
    std::memset(buffer, 1, bytes);
  }
  bitnet_thread_pool *pool = nullptr;
  if (threads > 1)
    check(bitnet_thread_pool_create(threads, &pool));
  struct Job {
    const __m512i *data;
    int64_t lines;
    __m512i sums[64];
  } job{buffer, static_cast<int64_t>(bytes / 64), {}};
  auto body = [](void *arg, int64_t begin, int64_t end) {
    auto *j = static_cast<Job *>(arg);
    int64_t per = j->lines / 64;
    for (int64_t c = begin; c < end; ++c) {
      __m512i a = _mm512_setzero_si512(), b = a, d = a, e = a;
      const __m512i *p = j->data + c * per;
      for (int64_t i = 0; i + 4 <= per; i += 4) {
        a = _mm512_add_epi32(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi32(b, _mm512_load_si512(p + i + 1));
        d = _mm512_add_epi32(d, _mm512_load_si512(p + i + 2));
        e = _mm512_add_epi32(e, _mm512_load_si512(p + i + 3));
      }
      j->sums[c] = _mm512_add_epi32(_mm512_add_epi32(a, b), _mm512_add_epi32(d, e));
    }
  };
  for (auto _ : state) {
    if (pool)
      bitnet_thread_pool_parallel_for(pool, 64, body, &job);
    else
      body(&job, 0, 64);
    benchmark::DoNotOptimize(job.sums);
  }
  bitnet_thread_pool_release(pool);
  state.counters["GB/s"] = benchmark::Counter(
      bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// vpdpbusd on registers, 16 independent accumulators a thread: the int8
/// dot-product peak the MAD kernels' prefill is measured against (64 u8 x i8
/// products, 128 operations, an instruction). In assembly, so that no
/// compiler's register allocation stands between the loop and the peak.
void int8PeakBody(void *arg, int64_t begin, int64_t end) {
  auto *sums = static_cast<int32_t *>(arg);
  for (int64_t c = begin; c < end; ++c) {
    int64_t iterations = kInt8PeakIterations;
    int32_t lane0 = 0;
    __asm__ volatile(
        "vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t" // all ones
        "vpabsb %%zmm16, %%zmm17\n\t"
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
        "vpxord %%zmm\\r, %%zmm\\r, %%zmm\\r\n\t"
        ".endr\n\t"
        "1:\n\t"
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
        "vpdpbusd %%zmm16, %%zmm17, %%zmm\\r\n\t"
        ".endr\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        ".irp r,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
        "vpaddd %%zmm\\r, %%zmm0, %%zmm0\n\t"
        ".endr\n\t"
        "vmovd %%xmm0, %1\n\t"
        : "+r"(iterations), "=r"(lane0)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
          "xmm15", "xmm16", "xmm17", "cc");
    sums[c * 16] = lane0;
  }
}

void BM_Int8Peak(benchmark::State &state) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    state.SkipWithError("this CPU lacks AVX-512 VNNI (vpdpbusd)");
    return;
  }
  int threads = static_cast<int>(state.range(0));
  bitnet_thread_pool *pool = nullptr;
  if (threads > 1)
    check(bitnet_thread_pool_create(threads, &pool));
  alignas(64) static int32_t sums[64 * 16];
  for (auto _ : state) {
    if (pool)
      bitnet_thread_pool_parallel_for(pool, kInt8PeakChunks, int8PeakBody,
                                      sums);
    else
      int8PeakBody(sums, 0, kInt8PeakChunks);
    benchmark::DoNotOptimize(sums);
  }
  bitnet_thread_pool_release(pool);
  state.counters["GOPS"] = benchmark::Counter(
      kInt8PeakChunks * kInt8PeakIterations * 16 * 128.0 * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
}

//===----------------------------------------------------------------------===//
// Registration and the ratio table
//===----------------------------------------------------------------------===//

/// The MAD family at its widest on this CPU.
std::string madKernels() {
  return __builtin_cpu_supports("avx512vnni") ? "avx512vnni" : "auto";
}

void registerAll() {
  auto threads = [](benchmark::internal::Benchmark *b) {
    b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  benchmark::RegisterBenchmark("read_bandwidth", BM_ReadBandwidth)
      ->Apply(threads)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("int8_peak", BM_Int8Peak)
      ->Apply(threads)->Unit(benchmark::kMillisecond);
  for (const char *precision : {"f16", "bf16", "int8", "w8a8"})
    benchmark::RegisterBenchmark(
        (std::string("head_") + precision + "/65536x2560/m1").c_str(), BM_Head,
        precision)
        ->Apply(threads)->Unit(benchmark::kMillisecond);
  for (const Shape &s : kShapes) {
    std::string shape = std::string(s.name) + "_" + std::to_string(s.n) + "x" +
                        std::to_string(s.k);
    for (bool cold : {false, true}) {
      std::string temp = cold ? "/cold" : "/hot";
      benchmark::RegisterBenchmark(("mad/" + shape + "/m1" + temp).c_str(),
                                   BM_Compiled, s, 1, madKernels(), cold)
          ->Apply(threads);
      benchmark::RegisterBenchmark(("lut/" + shape + "/m1" + temp).c_str(),
                                   BM_Compiled, s, 1, "avx512-lut", cold)
          ->Apply(threads);
      benchmark::RegisterBenchmark(("openblas_f32/" + shape + "/m1" + temp).c_str(),
                                   BM_OpenBLAS, s, 1, cold)
          ->Apply(threads);
      benchmark::RegisterBenchmark(("plain_int8/" + shape + "/m1" + temp).c_str(),
                                   BM_PlainInt8, s, cold)
          ->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
    // The AVX2 family (vpmaddubsw), for machines without VNNI.
    benchmark::RegisterBenchmark(("mad_avx2/" + shape + "/m1/hot").c_str(),
                                 BM_Compiled, s, 1, "avx2", false)
        ->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("reference/" + shape + "/m1/hot").c_str(),
                                 BM_Compiled, s, 1, "reference", false)
        ->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond)->Iterations(20);
  }
  // Prefill: 128 tokens through q/o.
  const Shape &qo = kShapes[0];
  benchmark::RegisterBenchmark("mad/qo_2560x2560/m128/hot", BM_Compiled,
                               qo, 128, madKernels(), false)
      ->Apply(threads);
  // The LUT layout's prefill loop: codes decoded once per call, then int8
  // dot products as the MAD loop's.
  benchmark::RegisterBenchmark("lut/qo_2560x2560/m128/hot", BM_Compiled, qo,
                               128, "avx512-lut", false)
      ->Apply(threads);
  benchmark::RegisterBenchmark("openblas_f32/qo_2560x2560/m128/hot",
                               BM_OpenBLAS, qo, 128, false)
      ->Apply(threads);
}

/// Prints results as usual and keeps them for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run> &runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run &run : runs)
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
        // With --benchmark_repetitions, the best repetition: on a shared
        // machine the slow ones measure the neighbours.
        std::string name = withoutIterations(run.benchmark_name());
        double time = run.GetAdjustedRealTime();
        if (!times.count(name) || time < times[name])
          times[name] = time;
        for (const auto &[counter, value] : run.counters) {
          double &best = counters[name + "#" + counter];
          best = std::max(best, double(value));
        }
      }
  }

  /// The heads' streaming rate as a share of the read probe, and the prefill
  /// kernel's operations as a share of the int8 peak, thread for thread.
  void printShares() {
    std::printf("\nshares of this machine's probes (same run)\n");
    std::printf("%-44s %10s %10s\n", "case", "1 thread", "2 threads");
    auto share = [&](const std::string &name, const std::string &counter,
                     const std::string &probe, const std::string &probeCounter,
                     int threads) -> std::string {
      std::string suffix = "/" + std::to_string(threads) + "/real_time";
      auto value = counters.find(name + suffix + "#" + counter);
      auto peak = counters.find(probe + suffix + "#" + probeCounter);
      if (value == counters.end() || peak == counters.end() || !peak->second)
        return "-";
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.0f%%", 100.0 * value->second / peak->second);
      return buf;
    };
    struct Row {
      const char *label, *name, *counter, *probe, *probeCounter;
    } rows[] = {
        {"head f16 / read probe", "head_f16/65536x2560/m1", "weight_GB/s",
         "read_bandwidth", "GB/s"},
        {"head bf16 / read probe", "head_bf16/65536x2560/m1", "weight_GB/s",
         "read_bandwidth", "GB/s"},
        {"head int8 / read probe", "head_int8/65536x2560/m1", "weight_GB/s",
         "read_bandwidth", "GB/s"},
        {"head w8a8 / read probe", "head_w8a8/65536x2560/m1", "weight_GB/s",
         "read_bandwidth", "GB/s"},
        {"mad qo m128 (hot) / int8 peak", "mad/qo_2560x2560/m128/hot", "GOPS",
         "int8_peak", "GOPS"},
        {"lut qo m128 (hot) / int8 peak", "lut/qo_2560x2560/m128/hot", "GOPS",
         "int8_peak", "GOPS"},
    };
    for (const Row &row : rows)
      std::printf("%-44s %10s %10s\n", row.label,
                  share(row.name, row.counter, row.probe, row.probeCounter, 1).c_str(),
                  share(row.name, row.counter, row.probe, row.probeCounter, 2).c_str());
  }

  void printRatios() {
    std::printf("\nratios (time of the baseline / time of the MAD kernel; > 1 means "
                "the MAD kernel is faster; the lut column compares the two "
                "compiled families)\n");
    std::printf("%-44s %10s %10s %10s %10s %10s\n", "case", "f32 BLAS",
                "int8", "reference", "avx2", "lut");
    for (const auto &[name, time] : times) {
      if (name.rfind("mad/", 0) != 0)
        continue;
      std::string rest = name.substr(std::strlen("mad/"));
      auto ratio = [&](const std::string &prefix) -> std::string {
        std::string base = prefix + rest;
        // int8 and reference run on one thread: compare like with like.
        if (!times.count(base))
          return "-";
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.2fx", times.at(base) / time);
        return buf;
      };
      std::printf("%-44s %10s %10s %10s %10s %10s\n", rest.c_str(),
                  ratio("openblas_f32/").c_str(), ratio("plain_int8/").c_str(),
                  ratio("reference/").c_str(), ratio("mad_avx2/").c_str(),
                  ratio("lut/").c_str());
    }
  }

private:
  /// The name without a fixed "/iterations:N", so cases line up.
  static std::string withoutIterations(std::string name) {
    size_t at = name.find("/iterations:");
    if (at != std::string::npos)
      name.erase(at, name.find('/', at + 1) - at);
    return name;
  }

  std::map<std::string, double> times;
  /// "name#counter" -> the counter's value.
  std::map<std::string, double> counters;
};

} // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  registerAll();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.printRatios();
  reporter.printShares();
  benchmark::Shutdown();
  return 0;
}
