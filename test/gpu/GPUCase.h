//===- GPUCase.h - GPU execution cases, their files and their runner -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// A GPU case is a model (MLIR text or a model file, with compile flags) and a
// list of steps over libbitnet_rt with the values every step must give. The
// same cases run in two ways: compiled and run in one process by the
// GoogleTest suite (test/unit/GPUTest.cpp), or written to a folder with their
// compiled models on a machine with the compiler (bitnet-gpu-prepare) and run
// by bitnet-gpu-check on a machine that has a GPU but no compiler. This file
// needs libbitnet_rt only.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TEST_GPU_GPUCASE_H
#define BITNET_TEST_GPU_GPUCASE_H

#include "bitnet_rt/bitnet_rt.h"

#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::gpu {

/// How a value that a step gives is compared with the expected one.
enum class Compare : int32_t {
  /// The same bytes.
  Bits,
  /// |e - a| <= tolerance * max(1, |e|) for every element (f32 or f16).
  Near,
  /// |e - a| <= tolerance * max(1, max |e|) for every element, and the
  /// largest element at the same place (the logits of a decoder step).
  Logits,
};

/// Name of `compare` in the case files ("bits", "near", "logits").
const char *compareName(Compare compare);

/// Run buffer `index` of a model: input i for i >= 0, output j for -1 - j
/// (see output()), so that a case names an output without knowing how many
/// inputs the model has.
constexpr int32_t output(int32_t j) { return -1 - j; }

/// The bytes of one run buffer, and for an expected value how to compare.
struct Buffer {
  int32_t index = 0;
  std::vector<uint8_t> bytes;
  Compare compare = Compare::Bits;
  float tolerance = 0;
};

enum class StepKind {
  /// bitnet_context_run with every input; the outputs and the updated state
  /// inputs are compared (host copies in, host copies out).
  Run,
  /// bitnet_context_gpu_upload of one buffer.
  Upload,
  /// Zeros uploaded to every state input (a decoder's empty KV caches).
  ZeroState,
  /// bitnet_context_gpu_launch of the whole launch list.
  Launch,
  /// bitnet_context_gpu_download of one buffer, compared.
  Download,
};

struct Step {
  StepKind kind = StepKind::Run;
  /// Run: every input, in order; Upload: the one buffer.
  std::vector<Buffer> inputs;
  /// Run: outputs and state inputs after the run; Download: the one buffer.
  std::vector<Buffer> expected;
};

struct Case {
  /// Letters, digits, '_' and '-' (it names files).
  std::string name;
  /// The model as MLIR text, or empty with `sourceFile` set.
  std::string mlir;
  std::string sourceFile;
  /// bitnet-compile flags besides the target (--target, --gpu-arch).
  std::vector<std::string> flags;
  /// Flags of the GPU build only (the CPU build of a case has no such
  /// choices), e.g. --gpu-gemv-rows.
  std::vector<std::string> gpuFlags;
  /// The expected values are what the model's CPU build gives: recorded by
  /// running the steps on it (runCase with record = true) before the check.
  bool cpuReference = false;
  std::vector<Step> steps;
};

/// Checks `c` against the descriptor of its compiled model, with no GPU: every
/// buffer it names exists and has the model's byte size, a run gives every
/// input, the inputs a run compares after it are state inputs, and
/// zero-state has state inputs to zero. Returns one line per problem.
std::vector<std::string> checkCase(const Case &c, const bitnet_model_info &info);

/// Runs the steps of `c` on `context` (after checkCase). On a GPU model the steps use the
/// device calls; on a CPU model the device buffers are kept on the host
/// (Upload and Download copy, Launch is one bitnet_context_run), so the same
/// case runs on a CPU build too. With `record`, the values the steps give
/// become the expected ones; otherwise they are compared. Returns one line
/// per failure, none when the case passed.
std::vector<std::string> runCase(Case &c, bitnet_context *context,
                                 bool record = false);

/// Writes `cases` to `dir`/cases.txt (the steps, one a line) and
/// `dir`/cases.bin (every distinct byte string once); `models[i]` is the
/// compiled model of cases[i], a path relative to `dir`. `header` names the
/// target the models were compiled for (e.g. "nvptx sm_90"). Returns an
/// error message, empty on success.
std::string writeCases(const std::string &dir, const std::string &header,
                       const std::vector<Case> &cases,
                       const std::vector<std::string> &models);

/// Reads what writeCases wrote. Returns an error message, empty on success.
std::string readCases(const std::string &dir, std::string &header,
                      std::vector<Case> &cases,
                      std::vector<std::string> &models);

} // namespace bitnet::gpu

#endif // BITNET_TEST_GPU_GPUCASE_H
