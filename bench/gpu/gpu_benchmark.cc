//===- gpu_benchmark.cc - Ternary GPU kernels against cuBLAS fp16 ---------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Runs bitlinear layers of the bitnet-b1.58-2B-4T shapes (gpu_shapes.h),
// compiled ahead of time with `bitnet-compile --target=nvptx` by
// bitnet-gpu-prepare, on the GPU through libbitnet_rt, checks them bit for
// bit against the scalar reference's outputs written beside them, and times
// them next to cuBLAS fp16 (cublasGemmEx) on the same shapes in the same
// process. Needs no compiler:
//
//   bitnet-gpu-bench [DIR] [--runs=200] [--warmup=20] [--shapes=N,N,N,N]
//
// DIR is the prepared folder (default build-gpu-carry); its bench/ is read.
//
// Timing. Inputs are uploaded once (bitnet_context_gpu_upload) and the
// launches are enqueued on the context's stream without host transfers
// (bitnet_context_gpu_launch); CUDA events on that stream bracket each
// launch. Before every timed launch the L2 cache is flushed by a memset of
// twice its size on the same stream, so weights come from device memory, as
// in a decoder whose weights are far larger than L2 (the memset also lets
// the host enqueue the launch before the GPU reaches it). The figure is the
// median over --runs launches after --warmup untimed ones.
//
// Bandwidth. Weight traffic is the bytes of weights a launch reads once (the
// 2-bit GPU layout for the ternary kernels, N x K x 2 bytes for fp16), over
// its time. The card's bandwidth is computed from the device attributes
// (memory clock x bus width x 2) and measured by a device-to-device copy
// probe in the same run; shares are given against the attribute figure.
//
// Exit status: 0 when every layer matched the reference, 1 when one did not
// or something failed (a missing prepared file included), 2 when there is no
// usable GPU.
//
//===----------------------------------------------------------------------===//

#include "gpu_shapes.h"

#include "bitnet_rt/bitnet_rt.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using bitnet::bench::GPUShape;
using bitnet::bench::kGPUShapes;

struct Options {
  std::string dir = "build-gpu-carry";
  int runs = 200;
  int warmup = 20;
  std::vector<bool> shapes = std::vector<bool>(std::size(kGPUShapes), true);
};

[[noreturn]] void fail(const std::string &message, int code = 1) {
  std::fprintf(stderr, "bitnet-gpu-bench: %s\n", message.c_str());
  std::exit(code);
}

void check(bitnet_status status, const char *what) {
  if (status) {
    std::string message = bitnet_status_message(status);
    bitnet_status_free(status);
    fail(std::string(what) + ": " + message);
  }
}

void checkCuda(cudaError_t err, const char *what) {
  if (err != cudaSuccess)
    fail(std::string(what) + ": " + cudaGetErrorName(err) + ": " +
         cudaGetErrorString(err));
}

void checkCublas(cublasStatus_t st, const char *what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    fail(std::string(what) + ": cuBLAS status " + std::to_string(int(st)));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// IEEE half bits of `f`, rounded to nearest even (values of this benchmark
/// are well inside the half range; subnormals are flushed to zero).
uint16_t toHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp <= 0)
    return static_cast<uint16_t>(sign);
  if (exp >= 31)
    return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t h = (uint32_t(exp) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1)))
    ++h; // may carry into the exponent, which is right
  return static_cast<uint16_t>(sign | h);
}

float fromHalf(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0)
    x = sign; // subnormals as zero
  else if (exp == 31)
    x = sign | 0x7f800000u | (mant << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

/// The `count` floats of the prepared file `path`.
std::vector<float> readFloats(const std::string &path, int64_t count) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> v(count);
  in.read(reinterpret_cast<char *>(v.data()),
          static_cast<std::streamsize>(count * sizeof(float)));
  if (!in || in.peek() != std::char_traits<char>::eof())
    fail("cannot read " + path + " (" + std::to_string(count) +
         " floats): run bench/gpu/prepare.sh for this folder");
  return v;
}

/// Times `enqueue` (work on `stream`) with events, flushing L2 before each.
class Timer {
public:
  Timer(cudaStream_t stream, void *flushBuffer, size_t flushBytes,
        const Options &opt)
      : stream(stream), flushBuffer(flushBuffer), flushBytes(flushBytes),
        opt(opt) {}

  template <typename F> double medianMicroseconds(F enqueue) {
    for (int i = 0; i < opt.warmup; ++i)
      enqueue();
    checkCuda(cudaStreamSynchronize(stream), "warm-up");
    std::vector<cudaEvent_t> start(opt.runs), stop(opt.runs);
    for (int i = 0; i < opt.runs; ++i) {
      checkCuda(cudaEventCreate(&start[i]), "cudaEventCreate");
      checkCuda(cudaEventCreate(&stop[i]), "cudaEventCreate");
    }
    for (int i = 0; i < opt.runs; ++i) {
      checkCuda(cudaMemsetAsync(flushBuffer, i & 0xff, flushBytes, stream),
                "L2 flush");
      checkCuda(cudaEventRecord(start[i], stream), "cudaEventRecord");
      enqueue();
      checkCuda(cudaEventRecord(stop[i], stream), "cudaEventRecord");
    }
    checkCuda(cudaStreamSynchronize(stream), "timed runs");
    std::vector<double> us(opt.runs);
    for (int i = 0; i < opt.runs; ++i) {
      float ms = 0;
      checkCuda(cudaEventElapsedTime(&ms, start[i], stop[i]),
                "cudaEventElapsedTime");
      us[i] = 1e3 * ms;
      cudaEventDestroy(start[i]);
      cudaEventDestroy(stop[i]);
    }
    return median(us);
  }

private:
  cudaStream_t stream;
  void *flushBuffer;
  size_t flushBytes;
  const Options &opt;
};

struct Row {
  std::string shape;
  std::string what;
  double us;
  double weightBytes;
  double cublasUs;     // 0 when not compared
  bool target = false; // the W2A8 kernel of 1x6912x2560 in the chosen layout
};

/// "gate_up 1x6912x2560", with " r8" for a forced layout.
std::string label(const GPUShape &s) {
  return std::string(s.name) + " " + std::to_string(s.m) + "x" +
         std::to_string(s.n) + "x" + std::to_string(s.k) +
         (s.rows ? " r" + std::to_string(s.rows) : "");
}

Options parseOptions(int argc, char **argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *flag) -> const char * {
      size_t n = std::strlen(flag);
      if (a.compare(0, n, flag) == 0 && a.size() > n && a[n] == '=')
        return argv[i] + n + 1;
      return nullptr;
    };
    if (const char *v = value("--runs"))
      opt.runs = std::max(1, std::atoi(v));
    else if (const char *v = value("--warmup"))
      opt.warmup = std::max(0, std::atoi(v));
    else if (const char *v = value("--shapes")) {
      // Indices into the shape list, e.g. --shapes=1 for gate/up alone.
      std::fill(opt.shapes.begin(), opt.shapes.end(), false);
      for (const char *p = v; *p;) {
        char *end;
        long idx = std::strtol(p, &end, 10);
        if (end == p || idx < 0 || idx >= long(std::size(kGPUShapes)))
          fail("bad --shapes=" + std::string(v) + " (indices 0 to " +
               std::to_string(std::size(kGPUShapes) - 1) + ")");
        opt.shapes[idx] = true;
        p = *end == ',' ? end + 1 : end;
      }
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [DIR] [--runs=N] [--warmup=N] "
                  "[--shapes=I,J,...]\nDIR: the folder bench/gpu/prepare.sh "
                  "wrote (default build-gpu-carry)\nshapes:",
                  argv[0]);
      for (size_t s = 0; s < std::size(kGPUShapes); ++s)
        std::printf(" %zu=%s", s, label(kGPUShapes[s]).c_str());
      std::printf("\n");
      std::exit(0);
    } else if (!a.empty() && a[0] != '-') {
      opt.dir = a;
    } else {
      fail("unknown argument '" + a + "' (see --help)");
    }
  }
  return opt;
}

} // namespace

int main(int argc, char **argv) {
  Options opt = parseOptions(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  // A GPU, seen both by libbitnet_rt and by the CUDA runtime (cuBLAS).
  if (bitnet_status st = bitnet_gpu_available()) {
    std::string why = bitnet_status_message(st);
    bitnet_status_free(st);
    fail("no usable NVIDIA GPU: " + why, 2);
  }
  int devices = 0;
  cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0)
    fail(std::string("the CUDA runtime sees no GPU: ") +
             (err != cudaSuccess ? cudaGetErrorString(err)
                                 : "the driver reports no device"),
         2);
  checkCuda(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop;
  checkCuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int memClockKHz = 0, busBits = 0, l2Bytes = 0;
  cudaDeviceGetAttribute(&memClockKHz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, 0);
  cudaDeviceGetAttribute(&l2Bytes, cudaDevAttrL2CacheSize, 0);
  double peakGBs = 2.0 * memClockKHz * 1e3 * (busBits / 8.0) * 1e-9;

  std::printf("device: %s (sm_%d%d, %d SMs, L2 %.0f MiB)\n", prop.name,
              prop.major, prop.minor, prop.multiProcessorCount,
              l2Bytes / 1048576.0);

  // The L2 flush buffer and the copy probe.
  size_t flushBytes = std::max<size_t>(2 * size_t(l2Bytes), 64 << 20);
  void *flushBuffer = nullptr;
  checkCuda(cudaMalloc(&flushBuffer, flushBytes), "cudaMalloc (flush)");
  cudaStream_t stream;
  checkCuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
            "cudaStreamCreate");
  double probeGBs = 0;
  {
    size_t bytes = 512u << 20;
    void *a = nullptr, *b = nullptr;
    checkCuda(cudaMalloc(&a, bytes), "cudaMalloc (probe)");
    checkCuda(cudaMalloc(&b, bytes), "cudaMalloc (probe)");
    checkCuda(cudaMemset(a, 1, bytes), "cudaMemset (probe)");
    Options probeOpt = opt;
    probeOpt.runs = 20;
    probeOpt.warmup = 3;
    Timer timer(stream, flushBuffer, flushBytes, probeOpt);
    double us = timer.medianMicroseconds([&] {
      checkCuda(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream),
                "cudaMemcpyAsync (probe)");
    });
    probeGBs = 2.0 * bytes / (us * 1e-6) * 1e-9; // read + write
    cudaFree(a);
    cudaFree(b);
  }
  if (peakGBs <= 0) {
    // A driver that no longer reports the memory clock: the shares are then
    // of the measured copy bandwidth.
    std::printf("the device attributes give no memory clock or bus width; "
                "shares below are of the copy probe's bandwidth\n");
    peakGBs = probeGBs;
  }
  std::printf("memory bandwidth: %.0f GB/s from the device attributes "
              "(%d MHz x %d bits x 2), %.0f GB/s measured by a "
              "device-to-device copy (%.0f%%)\n",
              peakGBs, memClockKHz / 1000, busBits, probeGBs,
              100.0 * probeGBs / peakGBs);

  cublasHandle_t cublas;
  checkCublas(cublasCreate(&cublas), "cublasCreate");
  checkCublas(cublasSetStream(cublas, stream), "cublasSetStream");

  std::vector<Row> rows;
  // cuBLAS times by (M, N, K): layouts of one shape share them.
  std::map<std::tuple<int64_t, int64_t, int64_t>, double> cublasTimes;
  bool allMatch = true;
  for (size_t si = 0; si < std::size(kGPUShapes); ++si) {
    if (!opt.shapes[si])
      continue;
    const GPUShape &s = kGPUShapes[si];
    std::string shapeLabel = label(s);
    std::printf("%s:\n", shapeLabel.c_str());
    std::string stem = opt.dir + "/bench/" + s.stem();
    std::vector<float> x = readFloats(stem + ".x", s.m * s.k);
    std::vector<float> expected = readFloats(stem + ".y", s.m * s.n);

    // The ternary layer through libbitnet_rt.
    std::string so = stem + ".so";
    bitnet_model *model = nullptr;
    bitnet_context *context = nullptr;
    check(bitnet_model_load(so.c_str(), &model), "bitnet_model_load");
    check(bitnet_context_create(model, nullptr, &context),
          "bitnet_context_create");
    const bitnet_gpu_program *program = bitnet_model_get_info(model)->gpu;
    if (!program)
      fail(so + " is not a GPU model");
    std::printf("  %s, code for %s\n", so.c_str(), program->arch);

    std::vector<float> y(s.m * s.n, -1.0f);
    const void *in[] = {x.data()};
    void *out[] = {y.data()};
    check(bitnet_context_run(context, in, 1, out, 1), "bitnet_context_run");
    int64_t mismatches = 0;
    for (size_t i = 0; i < y.size(); ++i)
      mismatches += y[i] != expected[i];
    std::printf("  ternary output vs scalar reference: %s\n",
                mismatches ? (std::to_string(mismatches) + " of " +
                              std::to_string(y.size()) + " values differ")
                                 .c_str()
                           : "bit for bit");
    allMatch &= mismatches == 0;

    // Kernel timings: the input stays on the device.
    check(bitnet_context_gpu_upload(context, 0, x.data()),
          "bitnet_context_gpu_upload");
    auto bitnetStream =
        static_cast<cudaStream_t>(bitnet_context_gpu_stream(context));
    Timer bitnetTimer(bitnetStream, flushBuffer, flushBytes, opt);
    int32_t gemv = -1;
    double weightBytes = 0;
    for (int32_t i = 0; i < program->num_launches; ++i) {
      const bitnet_gpu_launch &l = program->launches[i];
      if (!std::strstr(program->kernel_names[l.kernel], "_w2a8_"))
        continue;
      gemv = i;
      for (int32_t a = 0; a < l.num_args; ++a)
        if (l.args[a].kind == BITNET_GPU_ARG_WEIGHT)
          weightBytes = std::max<double>(
              weightBytes, double(program->weights[l.args[a].index].bytes));
    }
    if (gemv < 0)
      fail(so + " has no W2A8 launch");
    std::printf("  W2A8 kernel %s\n",
                program->kernel_names[program->launches[gemv].kernel]);
    double kernelUs = bitnetTimer.medianMicroseconds([&] {
      check(bitnet_context_gpu_launch(context, gemv, 1), "gpu launch");
    });
    double layerUs = bitnetTimer.medianMicroseconds([&] {
      check(bitnet_context_gpu_launch(context, 0, -1), "gpu launch");
    });
    // A whole bitnet_context_run, host transfers included (host clock).
    std::vector<double> runUs;
    for (int i = 0; i < std::max(10, opt.runs / 10); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      check(bitnet_context_run(context, in, 1, out, 1), "bitnet_context_run");
      runUs.push_back(std::chrono::duration<double, std::micro>(
                          std::chrono::steady_clock::now() - t0)
                          .count());
    }
    bitnet_context_free(context);
    bitnet_model_release(model);

    auto key = std::make_tuple(s.m, s.n, s.k);
    bool newShape = !cublasTimes.count(key);
    if (newShape) {
      // cuBLAS fp16: y[M, N] = x[M, K] . W[N, K]^T, fp32 accumulation.
      std::vector<float> wf(s.n * s.k);
      {
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (float &v : wf)
          v = u(rng);
      }
      std::vector<uint16_t> wh(wf.size()), xh(x.size()), yh(s.m * s.n);
      for (size_t i = 0; i < wf.size(); ++i)
        wh[i] = toHalf(wf[i]);
      for (size_t i = 0; i < x.size(); ++i)
        xh[i] = toHalf(x[i]);
      void *dW, *dX, *dY;
      checkCuda(cudaMalloc(&dW, wh.size() * 2), "cudaMalloc");
      checkCuda(cudaMalloc(&dX, xh.size() * 2), "cudaMalloc");
      checkCuda(cudaMalloc(&dY, yh.size() * 2), "cudaMalloc");
      checkCuda(cudaMemcpy(dW, wh.data(), wh.size() * 2, cudaMemcpyHostToDevice),
                "cudaMemcpy");
      checkCuda(cudaMemcpy(dX, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice),
                "cudaMemcpy");
      float alpha = 1.0f, beta = 0.0f;
      auto gemm = [&] {
        // Column-major: C[N x M] = W^T (W is K x N column-major) . X[K x M].
        checkCublas(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, int(s.n),
                                 int(s.m), int(s.k), &alpha, dW, CUDA_R_16F,
                                 int(s.k), dX, CUDA_R_16F, int(s.k), &beta, dY,
                                 CUDA_R_16F, int(s.n), CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT),
                    "cublasGemmEx");
      };
      Timer cublasTimer(stream, flushBuffer, flushBytes, opt);
      double cublasUs = cublasTimer.medianMicroseconds(gemm);
      checkCuda(cudaMemcpy(yh.data(), dY, yh.size() * 2, cudaMemcpyDeviceToHost),
                "cudaMemcpy");
      // A sanity check of the cuBLAS call on a few outputs of token 0.
      double worst = 0;
      for (int64_t n = 0; n < std::min<int64_t>(s.n, 16); ++n) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < s.k; ++k) {
          double p = double(fromHalf(wh[n * s.k + k])) * fromHalf(xh[k]);
          ref += p;
          mag += std::fabs(p);
        }
        worst = std::max(worst, std::fabs(fromHalf(yh[n]) - ref) / (mag + 1e-6));
      }
      if (worst > 1e-2)
        fail("cuBLAS result looks wrong (relative error " +
             std::to_string(worst) + "): the benchmark's call is broken");
      cudaFree(dW);
      cudaFree(dX);
      cudaFree(dY);
      cublasTimes[key] = cublasUs;
    }
    double cublasUs = cublasTimes[key];
    double fp16Bytes = 2.0 * s.n * s.k;
    bool target = s.m == 1 && s.n == 6912 && s.k == 2560 && s.rows == 0;
    rows.push_back({shapeLabel, "ternary W2A8 kernel", kernelUs, weightBytes,
                    cublasUs, target});
    rows.push_back({shapeLabel, "ternary layer (quantise + W2A8)", layerUs,
                    weightBytes, cublasUs});
    rows.push_back({shapeLabel, "bitnet_context_run (host copies)",
                    median(runUs), weightBytes, 0});
    if (newShape)
      rows.push_back(
          {shapeLabel, "cuBLAS fp16 cublasGemmEx", cublasUs, fp16Bytes, 0});
  }

  std::printf("\nL2 flushed before each launch; medians of %d runs; weight "
              "GB/s = weight bytes / time; %% of the %.0f GB/s from the device "
              "attributes\n\n",
              opt.runs, peakGBs);
  std::printf("%-26s %-34s %10s %10s %9s %7s %10s\n", "shape (MxNxK, rows/warp)", "what",
              "time us", "weight MB", "GB/s", "% peak", "vs cuBLAS");
  for (const Row &r : rows) {
    double gbs = r.weightBytes / (r.us * 1e-6) * 1e-9;
    char ratio[32] = "";
    if (r.cublasUs > 0)
      std::snprintf(ratio, sizeof(ratio), "%.2fx", r.cublasUs / r.us);
    std::printf("%-26s %-34s %10.2f %10.2f %9.0f %6.0f%% %10s\n",
                r.shape.c_str(), r.what.c_str(), r.us, r.weightBytes / 1e6, gbs,
                100.0 * gbs / peakGBs, ratio);
  }
  // The targets: 6912x2560 at batch 1, >= 2.5x cuBLAS and >= 60% of the
  // bandwidth in weight traffic.
  for (const Row &r : rows)
    if (r.target) {
      double share = r.weightBytes / (r.us * 1e-6) * 1e-9 / peakGBs;
      std::printf("\ntarget, 6912x2560 at batch 1: %.2fx cuBLAS fp16 (goal "
                  ">= 2.5x: %s), %.0f%% of the memory bandwidth (goal >= 60%%: "
                  "%s)\n",
                  r.cublasUs / r.us, r.cublasUs / r.us >= 2.5 ? "met" : "missed",
                  100 * share, share >= 0.6 ? "met" : "missed");
    }
  cublasDestroy(cublas);
  cudaStreamDestroy(stream);
  cudaFree(flushBuffer);
  if (!allMatch) {
    std::fprintf(stderr, "bitnet-gpu-bench: a ternary layer differs from "
                         "the scalar reference\n");
    return 1;
  }
  return 0;
}
