//===- gpu_prepare.cc - Compile the GPU check's models ahead of time ------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Writes everything the GPU check runs, so that the machine with the GPU
// needs no compiler (bench/gpu/README.md):
//
//   bitnet-gpu-prepare --out=DIR [--arch=sm_90] [--cuda-path=DIR]
//                      [--target=nvptx|cpu] [--emulation]
//
//   DIR/cases/  the GPU cases (test/unit/GPUCases.h): one compiled model per
//               case, cases.txt (the steps) and cases.bin (inputs and the
//               values the scalar reference or the CPU build gives), for
//               bitnet-gpu-check;
//   DIR/bench/  the benchmark's layers (gpu_shapes.h) compiled, with their
//               inputs and reference outputs, for bitnet-gpu-bench.
//
// --target=cpu compiles the cases for this machine's CPU instead (and no
// benchmark layers), so that bitnet-gpu-check and the case files can be
// tried where there is no GPU. --emulation adds the host builds of the
// kernels (bitnet-compile --gpu-emulation), so that bitnet-gpu-check runs
// everything prepared through the CUDA driver emulator.
//
//===----------------------------------------------------------------------===//

#include "GPUCases.h"
#include "ModelText.h"
#include "gpu_shapes.h"

#include "bitnet/Reference/Numerics.h"
#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/model_abi.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

struct Options {
  std::string out;
  std::string arch = "sm_90";
  std::string cudaPath = "/usr/local/cuda";
  std::string target = "nvptx";
  bool emulation = false;
  std::string scratch;
};

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "bitnet-gpu-prepare: %s\n", message.c_str());
  std::exit(1);
}

void makeDir(const std::string &path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    fail("cannot create " + path + ": " + std::strerror(errno));
}

std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string &path, const void *data, size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char *>(data), static_cast<std::streamsize>(bytes));
  if (!out)
    fail("cannot write " + path);
}

/// Compiles `source` to `output` with `flags`, for the GPU when `gpu`. A
/// failure ends the program, or with `error` set is put there.
bool compile(const Options &opt, const std::string &source,
             const std::string &output, const std::vector<std::string> &flags,
             bool gpu, std::string *error = nullptr) {
  std::string command = std::string(BITNET_COMPILE_PATH) + " " + source +
                        " -o " + output;
  if (gpu)
    command += " --target=nvptx --gpu-arch=" + opt.arch +
               " --cuda-path=" + opt.cudaPath +
               (opt.emulation ? " --gpu-emulation" : "");
  for (const std::string &flag : flags)
    command += " " + flag;
  std::string log = opt.scratch + "/compile.log";
  if (std::system((command + " > " + log + " 2>&1").c_str()) == 0)
    return true;
  std::string message = "compilation failed:\n  " + command + "\n" + readFile(log);
  if (!error)
    fail(message);
  *error = message;
  return false;
}

/// The source of case `c` as a file: its model file, or its MLIR written out.
std::string sourceOf(const Options &opt, const bitnet::gpu::Case &c) {
  if (c.mlir.empty())
    return c.sourceFile;
  std::string path = opt.scratch + "/" + c.name + ".mlir";
  writeFile(path, c.mlir.data(), c.mlir.size());
  return path;
}

/// The descriptor of a compiled model, read without loading it as a model
/// (a GPU model loads only where there is a GPU). The handle stays open.
const bitnet_model_info &describe(const std::string &path) {
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    fail(std::string("cannot open ") + path + ": " + dlerror());
  auto *info = static_cast<const bitnet_model_info *>(
      dlsym(handle, BITNET_MODEL_INFO_SYMBOL));
  if (!info)
    fail(path + " has no model descriptor");
  return *info;
}

std::string lines(const std::vector<std::string> &list) {
  std::string s;
  for (const std::string &line : list)
    s += "\n  " + line;
  return s;
}

/// Records the expected values of `c` from the model at `path` (a CPU build).
void recordOnCPU(bitnet::gpu::Case &c, const std::string &path) {
  bitnet_model *model = nullptr;
  bitnet_context *context = nullptr;
  bitnet_status st = bitnet_model_load(path.c_str(), &model);
  if (!st)
    st = bitnet_context_create(model, nullptr, &context);
  if (st)
    fail("cannot load the CPU build " + path + ": " +
         bitnet_status_message(st));
  std::vector<std::string> failures = bitnet::gpu::runCase(c, context, true);
  bitnet_context_free(context);
  bitnet_model_release(model);
  if (!failures.empty())
    fail("case " + c.name + " on its CPU build:" + lines(failures));
}

void prepareCases(const Options &opt) {
  bool gpu = opt.target == "nvptx";
  std::string dir = opt.out + "/cases";
  makeDir(dir);
  std::vector<bitnet::gpu::Case> cases;
  std::vector<std::string> models;
  for (const std::string &name : bitnet::test::gpuCaseNames()) {
    std::optional<bitnet::gpu::Case> c = bitnet::test::gpuCase(name);
    std::string source = sourceOf(opt, *c);
    std::string model = name + ".so";
    // For the CPU, a case of what only the GPU target compiles (or compiles
    // with other dtypes) is left out.
    std::string error;
    std::vector<std::string> flags = c->flags;
    if (gpu)
      flags.insert(flags.end(), c->gpuFlags.begin(), c->gpuFlags.end());
    if (!compile(opt, source, dir + "/" + model, flags, gpu,
                 gpu ? nullptr : &error)) {
      std::printf("  case %s left out: it does not compile for the CPU\n",
                  name.c_str());
      continue;
    }
    std::vector<std::string> problems =
        bitnet::gpu::checkCase(*c, describe(dir + "/" + model));
    if (!problems.empty() && !gpu) {
      std::printf("  case %s left out: its CPU build differs:%s\n",
                  name.c_str(), lines(problems).c_str());
      unlink((dir + "/" + model).c_str());
      continue;
    }
    if (!problems.empty())
      fail("case " + name + " does not fit its model:" + lines(problems));
    if (c->cpuReference) {
      std::string cpu = opt.scratch + "/" + name + "_cpu.so";
      if (gpu)
        compile(opt, source, cpu, c->flags, false);
      recordOnCPU(*c, gpu ? cpu : dir + "/" + model);
    }
    std::printf("  case %s\n", name.c_str());
    std::fflush(stdout);
    cases.push_back(std::move(*c));
    models.push_back(model);
  }
  std::string header = gpu ? "nvptx " + opt.arch +
                                 (opt.emulation ? " emulation" : "")
                           : "cpu";
  std::string error = bitnet::gpu::writeCases(dir, header, cases, models);
  if (!error.empty())
    fail(error);
}

/// The layer `s` with weights `w` as MLIR (2-bit storage, a hex constant).
std::string layerSource(const bitnet::bench::GPUShape &s,
                        const std::vector<int8_t> &w) {
  std::vector<uint8_t> packed = bitnet::ref::packI2(w.data(), s.n, s.k);
  std::string m = std::to_string(s.m), n = std::to_string(s.n),
              k = std::to_string(s.k);
  std::string x = "tensor<" + m + "x" + k + "xf32>",
              y = "tensor<" + m + "x" + n + "xf32>",
              t = "!bitnet.ternary<" + n + "x" + k + ", i2>";
  char scale[32];
  std::snprintf(scale, sizeof(scale), "%.9g", double(bitnet::bench::kGPUWeightScale));
  return "func.func @linear(%x: " + x + ") -> " + y + " {\n"
         "  %w = bitnet.constant " +
         bitnet::test::denseHex(packed.data(), packed.size()) + " : tensor<" +
         n + "x" +
         std::to_string((s.k + 3) / 4) + "xi8> -> " + t + "\n"
         "  %s = arith.constant dense<" + scale + "> : tensor<f32>\n"
         "  %y = bitnet.bitlinear %x, %w scale %s : " + x + ", " + t +
         ", tensor<f32> -> " + y + "\n"
         "  return %y : " + y + "\n}\n";
}

void prepareBench(const Options &opt) {
  std::string dir = opt.out + "/bench";
  makeDir(dir);
  for (const bitnet::bench::GPUShape &s : bitnet::bench::kGPUShapes) {
    std::vector<int8_t> w = bitnet::test::randomTernary(
        s.n * s.k, static_cast<unsigned>(s.n * 31 + s.k));
    std::vector<float> x = bitnet::test::randomFloats(s.m * s.k, 42);
    std::string source = opt.scratch + "/" + s.stem() + ".mlir";
    std::string text = layerSource(s, w);
    writeFile(source, text.data(), text.size());
    std::string stem = dir + "/" + s.stem();
    std::vector<std::string> flags;
    if (s.rows)
      flags.push_back("--gpu-gemv-rows=" + std::to_string(s.rows));
    compile(opt, source, stem + ".so", flags, true);
    std::vector<float> y = bitnet::ref::bitlinear(
        x.data(), w.data(), bitnet::bench::kGPUWeightScale, s.m, s.n, s.k);
    writeFile(stem + ".x", x.data(), x.size() * sizeof(float));
    writeFile(stem + ".y", y.data(), y.size() * sizeof(float));
    std::printf("  benchmark layer %s\n", s.stem().c_str());
    std::fflush(stdout);
  }
}

} // namespace

int main(int argc, char **argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string &flag, std::string &into) {
      if (a.rfind(flag + "=", 0) != 0)
        return false;
      into = a.substr(flag.size() + 1);
      return true;
    };
    if (value("--out", opt.out) || value("--arch", opt.arch) ||
        value("--cuda-path", opt.cudaPath) || value("--target", opt.target))
      continue;
    if (a == "--emulation") {
      opt.emulation = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      std::printf("usage: %s --out=DIR [--arch=sm_90] [--cuda-path=DIR] "
                  "[--target=nvptx|cpu] [--emulation]\n",
                  argv[0]);
      return 0;
    }
    fail("unknown argument '" + a + "' (see --help)");
  }
  if (opt.out.empty())
    fail("--out=DIR is needed");
  if (opt.target != "nvptx" && opt.target != "cpu")
    fail("--target must be nvptx or cpu, not '" + opt.target + "'");
  makeDir(opt.out);
  char scratch[] = "/tmp/bitnet-gpu-prepare-XXXXXX";
  if (!mkdtemp(scratch))
    fail("mkdtemp failed");
  opt.scratch = scratch;
  prepareCases(opt);
  if (opt.target == "nvptx")
    prepareBench(opt);
  std::system(("rm -rf " + opt.scratch).c_str());
  return 0;
}
