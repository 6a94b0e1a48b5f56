//===- gpu_check.cc - Run the prepared GPU cases --------------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Runs the GPU cases that bitnet-gpu-prepare wrote (test/unit/GPUCases.h:
// compiled models, their inputs and the values they must give) through
// libbitnet_rt, on a machine that needs no compiler:
//
//   bitnet-gpu-check [DIR] [--filter=TEXT] [--bench-layers]
//
// DIR is the prepared folder (default build-gpu-carry); its cases/ is read.
// With --bench-layers, the benchmark's layers in DIR/bench (gpu_shapes.h)
// are run once each too and compared with the scalar reference, bit for
// bit (what bitnet-gpu-bench checks before it times, without cuBLAS or the
// CUDA runtime, so that the CUDA driver emulator can run it). Prints one
// line per case and a count. Exit status: 0 when every case passed, 1 when
// one failed or the files are unusable, 2 when the cases were compiled for
// the GPU and there is no usable GPU.
//
//===----------------------------------------------------------------------===//

#include "GPUCase.h"
#include "gpu_shapes.h"

#include "bitnet_rt/bitnet_rt.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

int usage(const char *argv0) {
  std::printf("usage: %s [DIR] [--filter=TEXT] [--bench-layers]\n"
              "Runs the GPU cases in DIR/cases (default DIR: "
              "build-gpu-carry), written by bench/gpu/prepare.sh; with "
              "--bench-layers, also the benchmark's layers in DIR/bench, "
              "once each, against the reference.\n",
              argv0);
  return 0;
}

std::vector<char> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

/// Runs benchmark layer `s` once; the failures, none when it matched.
std::vector<std::string> runLayer(const std::string &dir,
                                  const bitnet::bench::GPUShape &s) {
  std::string stem = dir + "/bench/" + s.stem();
  std::vector<char> x = readBytes(stem + ".x"), expected = readBytes(stem + ".y");
  size_t xBytes = s.m * s.k * sizeof(float), yBytes = s.m * s.n * sizeof(float);
  if (x.size() != xBytes || expected.size() != yBytes)
    return {stem + ".x/.y are missing or of the wrong size"};
  bitnet_model *model = nullptr;
  bitnet_context *context = nullptr;
  bitnet_status st = bitnet_model_load((stem + ".so").c_str(), &model);
  if (!st)
    st = bitnet_context_create(model, nullptr, &context);
  std::vector<char> y(yBytes);
  if (!st) {
    const void *inputs[] = {x.data()};
    void *outputs[] = {y.data()};
    st = bitnet_context_run(context, inputs, 1, outputs, 1);
  }
  std::vector<std::string> failures;
  if (st) {
    failures.push_back(bitnet_status_message(st));
    bitnet_status_free(st);
  } else if (std::memcmp(y.data(), expected.data(), yBytes) != 0) {
    size_t bad = 0, first = 0;
    const float *got = reinterpret_cast<const float *>(y.data());
    const float *want = reinterpret_cast<const float *>(expected.data());
    for (size_t i = yBytes / sizeof(float); i-- > 0;)
      if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
        ++bad;
        first = i;
      }
    char line[200];
    std::snprintf(line, sizeof(line),
                  "%zu of %zu outputs differ from the reference; the first, "
                  "[%zu], is %.9g instead of %.9g",
                  bad, yBytes / sizeof(float), first, double(got[first]),
                  double(want[first]));
    failures.push_back(line);
  }
  bitnet_context_free(context);
  bitnet_model_release(model);
  return failures;
}

} // namespace

int main(int argc, char **argv) {
  std::string dir = "build-gpu-carry", filter;
  bool benchLayers = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h")
      return usage(argv[0]);
    if (a.rfind("--filter=", 0) == 0)
      filter = a.substr(9);
    else if (a == "--bench-layers")
      benchLayers = true;
    else if (!a.empty() && a[0] != '-')
      dir = a;
    else {
      std::fprintf(stderr, "bitnet-gpu-check: unknown argument '%s' (see --help)\n",
                   a.c_str());
      return 1;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::string header;
  std::vector<bitnet::gpu::Case> cases;
  std::vector<std::string> models;
  std::string error = bitnet::gpu::readCases(dir + "/cases", header, cases, models);
  if (!error.empty()) {
    std::fprintf(stderr, "bitnet-gpu-check: %s\n", error.c_str());
    return 1;
  }
  std::printf("cases in %s/cases, compiled for %s\n", dir.c_str(), header.c_str());
  if (header.rfind("nvptx", 0) == 0) {
    if (bitnet_status st = bitnet_gpu_available()) {
      std::fprintf(stderr, "bitnet-gpu-check: no usable NVIDIA GPU: %s\n",
                   bitnet_status_message(st));
      bitnet_status_free(st);
      return 2;
    }
  }

  int passed = 0, failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    bitnet::gpu::Case &c = cases[i];
    if (!filter.empty() && c.name.find(filter) == std::string::npos)
      continue;
    auto start = std::chrono::steady_clock::now();
    std::string path = dir + "/cases/" + models[i];
    std::vector<std::string> failures;
    bitnet_model *model = nullptr;
    bitnet_context *context = nullptr;
    bitnet_status st = bitnet_model_load(path.c_str(), &model);
    if (!st)
      st = bitnet_context_create(model, nullptr, &context);
    if (st) {
      failures.push_back(std::string("cannot load ") + path + ": " +
                         bitnet_status_message(st));
      bitnet_status_free(st);
    } else {
      failures = bitnet::gpu::runCase(c, context);
    }
    bitnet_context_free(context);
    bitnet_model_release(model);
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    std::printf("%-4s %-40s %4zu steps %8.1f ms\n",
                failures.empty() ? "ok" : "FAIL", c.name.c_str(),
                c.steps.size(), ms);
    for (const std::string &f : failures)
      std::printf("       %s\n", f.c_str());
    (failures.empty() ? passed : failed)++;
  }
  for (const bitnet::bench::GPUShape &s : bitnet::bench::kGPUShapes) {
    if (!benchLayers ||
        (!filter.empty() && s.stem().find(filter) == std::string::npos))
      continue;
    auto start = std::chrono::steady_clock::now();
    std::vector<std::string> failures = runLayer(dir, s);
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    std::printf("%-4s %-40s %4d steps %8.1f ms\n",
                failures.empty() ? "ok" : "FAIL", s.stem().c_str(), 1, ms);
    for (const std::string &f : failures)
      std::printf("       %s\n", f.c_str());
    (failures.empty() ? passed : failed)++;
  }
  if (passed + failed == 0) {
    std::fprintf(stderr, "bitnet-gpu-check: no case matches '%s'\n",
                 filter.c_str());
    return 1;
  }
  std::printf("%d of %d GPU cases passed\n", passed, passed + failed);
  return failed ? 1 : 0;
}
