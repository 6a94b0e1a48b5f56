//===- Tune.cpp - Timing kernel candidates on this machine -----------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "Tune.h"

#include "bitnet/Compiler/Compiler.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Target/CPU/CodeGen.h"
#include "bitnet/Target/Target.h"

#include "bitnet_rt/bitnet_rt.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <vector>


using namespace mlir;
using namespace mlir::bitnet;

namespace {
llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// One distinct layer shape: M tokens times an N x K weight.
struct LayerShape {
  int64_t m, n, k;
  std::string name() const { return llvm::formatv("{0}x{1}x{2}", m, n, k); }
};

/// The kernel families the tuner compares, in the order of their times.
constexpr const char *kFamilies[] = {"mad", "lut"};

/// Prefetch distances (bytes ahead of a layer's weight stream) timed for the
/// family a shape takes, against the compiler's default for the target CPU
/// (4096 bytes, or none for the MAD kernels on a Zen 4; timed twice where it
/// is a candidate, which costs a little time and keeps the cache's entries
/// alike on every CPU).
constexpr int64_t kPrefetchCandidates[] = {0, 1024, 4096, 16384};

/// Block shapes of the dense kernels (rows, vectors a row a step, bytes
/// ahead) timed against the target's default, for 16- and 8-float vectors.
struct BlockCandidate {
  int64_t rows, vectors, prefetch;
  std::string name() const {
    return llvm::formatv("{0}x{1}x{2}", rows, vectors, prefetch).str();
  }
};
constexpr BlockCandidate kDenseCandidates16[] = {
    {8, 2, 1024}, {8, 2, 256}, {16, 1, 256}, {16, 1, 1024}, {16, 1, 0},
    {32, 1, 256}, {16, 2, 512}, {16, 2, 0},  {4, 4, 1024}};
constexpr BlockCandidate kDenseCandidates8[] = {
    {4, 2, 1024}, {4, 2, 256}, {8, 1, 256}, {8, 1, 1024}, {2, 4, 1024}};

/// How much faster a family must measure to replace the cost model's
/// choice. On an AMD EPYC (Zen 5), decode builds whose layers each took the
/// family that measured faster alone (by 2-40%, 2-17% on the large layers)
/// ran 0.89-1.09x the cost model's build end to end, within the run-to-run
/// spread.
constexpr double kTunedMargin = 0.10;

/// The machine as the cache knows it: the CPU's model name, LLVM's name for
/// it, the features kernels may use, and the compiler that made the kernels
/// (another version may generate other code).
std::string machineKey(const ResolvedTarget &target) {
  std::string model = "unknown CPU";
  if (auto buffer = llvm::MemoryBuffer::getFileAsStream("/proc/cpuinfo")) {
    SmallVector<StringRef> lines;
    (*buffer)->getBuffer().split(lines, '\n');
    for (StringRef line : lines)
      if (line.starts_with("model name")) {
        model = line.split(':').second.trim().str();
        break;
      }
  }
  return llvm::formatv("{0} | {1} | {2} | {3}", model, target.cpu,
                       getCheckableFeatures(target), getProducerString())
      .str();
}

/// A module of `copies` bitlinear layers of `shape` with random ternary
/// weights (codes w + 1, four to a byte), all reading the same input: one
/// call streams every copy's weights, as a model's step streams its layers.
/// The weights are set as attributes after parsing, not printed as text.
OwningOpRef<ModuleOp> layerModule(MLIRContext &context,
                                  const LayerShape &shape, int64_t copies) {
  int64_t bytesPerRow = (shape.k + 3) / 4;
  std::string x = llvm::formatv("tensor<{0}x{1}xf32>", shape.m, shape.k);
  std::string y = llvm::formatv("tensor<{0}x{1}xf32>", shape.m, shape.n);
  std::string t = llvm::formatv("!bitnet.ternary<{0}x{1}, i2>", shape.n, shape.k);
  std::string text;
  llvm::raw_string_ostream os(text);
  SmallVector<std::string> results(copies, y);
  os << "func.func @layers(%x: " << x << ") -> ("
     << llvm::join(results, ", ") << ") {\n"
     << "  %s = arith.constant dense<0.0125> : tensor<f32>\n";
  for (int64_t c = 0; c < copies; ++c)
    os << "  %w" << c << " = bitnet.constant dense<85> : tensor<" << shape.n
       << "x" << bytesPerRow << "xi8> -> " << t << "\n  %y" << c
       << " = bitnet.bitlinear %x, %w" << c << " scale %s : " << x << ", "
       << t << ", tensor<f32> -> " << y << "\n";
  os << "  return";
  for (int64_t c = 0; c < copies; ++c)
    os << (c ? ", " : " ") << "%y" << c;
  os << " : " << llvm::join(results, ", ") << "\n}\n";
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
  if (!module)
    return nullptr;
  std::mt19937 rng(static_cast<unsigned>(shape.n * 31 + shape.k));
  std::uniform_int_distribution<int> code(0, 2);
  std::vector<int8_t> bytes(shape.n * bytesPerRow);
  module->walk([&](bitnet::ConstantOp constant) {
    for (int8_t &byte : bytes) {
      unsigned packed = 0;
      for (int b = 0; b < 4; ++b)
        packed |= static_cast<unsigned>(code(rng)) << (2 * b);
      byte = static_cast<int8_t>(packed);
    }
    auto type = cast<ShapedType>(constant.getStorage().getType());
    constant.setStorageAttr(DenseElementsAttr::get(type, ArrayRef(bytes)));
  });
  return module;
}

llvm::Error statusError(bitnet_status status, const llvm::Twine &what) {
  std::string message = bitnet_status_message(status);
  bitnet_status_free(status);
  return makeError(what + ": " + message);
}

/// A compiled layer loaded by libbitnet_rt.
class LoadedLayer {
public:
  static llvm::Expected<std::unique_ptr<LoadedLayer>>
  load(const std::string &path, bitnet_thread_pool *pool) {
    auto layer = std::unique_ptr<LoadedLayer>(new LoadedLayer(path));
    if (bitnet_status s = bitnet_model_load(path.c_str(), &layer->model))
      return statusError(s, "cannot load " + path);
    bitnet_context_options options = {};
    options.thread_pool = pool;
    if (bitnet_status s =
            bitnet_context_create(layer->model, &options, &layer->context))
      return statusError(s, "cannot run " + path);
    return layer;
  }
  ~LoadedLayer() {
    bitnet_context_free(context);
    bitnet_model_release(model);
  }
  /// Runs the layers on `x`, each writing `yBytes` bytes of `y` in turn.
  llvm::Error run(const float *x, float *y, int64_t copies, int64_t yFloats) {
    const void *in[] = {x};
    std::vector<void *> out(copies);
    for (int64_t c = 0; c < copies; ++c)
      out[c] = y + c * yFloats;
    if (bitnet_status s =
            bitnet_context_run(context, in, 1, out.data(), copies))
      return statusError(s, "running " + path);
    return llvm::Error::success();
  }
private:
  const std::string path;
  explicit LoadedLayer(std::string path) : path(std::move(path)) {}
  bitnet_model *model = nullptr;
  bitnet_context *context = nullptr;
};

/// What is timed: a module whose function @layers takes one input of
/// `xFloats` floats and returns `outputs` results of `yFloats` floats each.
struct Bench {
  std::string what;
  std::function<OwningOpRef<ModuleOp>(MLIRContext &)> build;
  int64_t outputs, xFloats, yFloats;
};

/// Compiles `bench` with `base` and the tuned entries `tuned` into a
/// temporary shared object.
llvm::Expected<std::string> compileCandidate(const Bench &bench,
                                             const CompileOptions &base,
                                             ArrayRef<std::string> tuned) {
  MLIRContext context;
  prepareContext(context);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = bench.build(context);
  if (!module)
    return makeError("cannot build the " + bench.what);
  SmallString<128> path;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("bitnet-tune", "so", path))
    return makeError("cannot create a temporary file: " + ec.message());
  CompileOptions options = base;
  options.emit = EmitKind::SharedObject;
  options.stage = MLIRStage::Input;
  options.kernels = "auto";
  options.tunedKernels.assign(tuned.begin(), tuned.end());
  options.variants.clear();
  options.entries.clear();
  options.layoutTokens = 0;
  options.verbose = false;
  options.applyPassManagerCLOptions = false;
  options.lastTokenLogits = false;
  if (failed(compileModule(*module, options, path))) {
    llvm::sys::fs::remove(path);
    return makeError("cannot compile the " + bench.what + " (" +
                     llvm::join(tuned, ",") + ")");
  }
  return path.str().str();
}

/// The median of `values` (not empty).
double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2,
                   values.end());
  return values[values.size() / 2];
}

/// The shared objects of one bench's candidates, by their tuned entries, for
/// a later measure() of the same bench to load again instead of compiling;
/// removed with it.
struct CompiledCandidates {
  llvm::StringMap<std::string> paths;
  CompiledCandidates() = default;
  CompiledCandidates(const CompiledCandidates &) = delete;
  CompiledCandidates &operator=(const CompiledCandidates &) = delete;
  ~CompiledCandidates() {
    for (const auto &entry : paths)
      llvm::sys::fs::remove(entry.getValue());
  }
};

/// Times `bench` compiled with each candidate's tuned entries, in
/// alternating rounds: the nanoseconds of one output's share of a call, per
/// candidate. With `compiled`, a candidate compiled for the bench before is
/// loaded from there, and the new ones are kept there.
llvm::Expected<SmallVector<int64_t>>
measure(const Bench &bench, const CompileOptions &options,
        ArrayRef<SmallVector<std::string, 1>> candidates,
        bitnet_thread_pool *pool, CompiledCandidates *compiled = nullptr) {
  std::vector<std::unique_ptr<LoadedLayer>> layers;
  std::vector<std::string> paths;
  llvm::scope_exit cleanup([&] {
    layers.clear();
    for (const std::string &p : paths)
      llvm::sys::fs::remove(p);
  });
  for (ArrayRef<std::string> tuned : candidates) {
    std::string key = llvm::join(tuned, ",");
    std::string path;
    if (compiled && compiled->paths.count(key)) {
      path = compiled->paths.lookup(key);
    } else {
      llvm::Expected<std::string> fresh =
          compileCandidate(bench, options, tuned);
      if (!fresh)
        return fresh.takeError();
      path = *fresh;
      if (compiled)
        compiled->paths[key] = path;
      else
        paths.push_back(path);
    }
    auto layer = LoadedLayer::load(path, pool);
    if (!layer)
      return layer.takeError();
    layers.push_back(std::move(*layer));
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(bench.xFloats), y(bench.outputs * bench.yFloats);
  for (float &v : x)
    v = normal(rng);
  using Clock = std::chrono::steady_clock;
  // Rounds of a few calls of each candidate in turn (each round starting
  // from another), so that a neighbour's burst of work on a shared machine
  // falls on all; a round's time of a candidate is the median of its calls.
  // The candidates are compared round by round: each one's time is the
  // first candidate's median time times the median of its ratios to the
  // first in the same round, which drifts of the machine from one round to
  // the next do not move.
  constexpr int kRounds = 15, kCallsPerRound = 3, kWarmup = 2;
  size_t count = layers.size();
  std::vector<std::vector<double>> rounds(count);
  for (int round = 0; round < kRounds; ++round)
    for (size_t turn = 0; turn < count; ++turn) {
      size_t i = (turn + round) % count;
      std::vector<double> calls;
      for (int call = 0; call < kCallsPerRound + (round == 0 ? kWarmup : 0);
           ++call) {
        auto start = Clock::now();
        if (llvm::Error error = layers[i]->run(x.data(), y.data(),
                                               bench.outputs, bench.yFloats))
          return std::move(error);
        double ns =
            std::chrono::duration<double, std::nano>(Clock::now() - start)
                .count() /
            bench.outputs;
        if (round > 0 || call >= kWarmup)
          calls.push_back(ns);
      }
      rounds[i].push_back(median(calls));
    }
  double first = median(rounds[0]);
  SmallVector<int64_t> result;
  for (size_t i = 0; i < count; ++i) {
    std::vector<double> ratios;
    for (int round = 0; round < kRounds; ++round)
      ratios.push_back(rounds[i][round] / rounds[0][round]);
    result.push_back(
        std::max<int64_t>(1, static_cast<int64_t>(first * median(ratios))));
  }
  return result;
}

/// `copies` bitlinear layers of `shape`: as many as stream twice
/// `cacheBytes` where the model's weights stream from memory (`cold`).
Bench layerBench(const LayerShape &shape, bool cold, int64_t cacheBytes) {
  int64_t layerBytes = std::max<int64_t>(1, shape.n * ((shape.k + 3) / 4));
  int64_t copies =
      cold ? std::clamp<int64_t>(2 * cacheBytes / layerBytes, 1, 256) : 1;
  Bench bench;
  bench.what = shape.name() + " layer";
  bench.build = [shape, copies](MLIRContext &context) {
    return layerModule(context, shape, copies);
  };
  bench.outputs = copies;
  bench.xFloats = shape.m * shape.k;
  bench.yFloats = shape.m * shape.n;
  return bench;
}

/// One distinct dense_matmul (a decoder's head): its shape, the element
/// type of its weight as the model holds it, and whether it quantizes its
/// input (W8A8).
struct DenseShape {
  LayerShape shape;
  /// The weight's element type in the model ("f32", "f16", "bf16", "i8"), and in
  /// its kernel after --float-weights.
  std::string type, kernelType;
  bool quantizeInput;
};

/// A dense_matmul of `dense`'s M and K with random weights of its type: its
/// N rows, or as many as stream twice `cacheBytes` where the model's weights
/// stream from memory (`cold`; fewer rows, the same rate a row).
Bench denseBench(const DenseShape &dense, bool cold, int64_t cacheBytes) {
  LayerShape shape = dense.shape;
  int64_t elementBytes = dense.kernelType == "f32"   ? 4
                         : dense.kernelType == "i8" ? 1
                                                    : 2;
  if (cold)
    shape.n = std::min(
        shape.n, std::max<int64_t>(256, 2 * cacheBytes /
                                            (shape.k * elementBytes)));
  Bench bench;
  bench.what = shape.name() + " " + dense.kernelType + " dense_matmul";
  bench.outputs = 1;
  bench.xFloats = shape.m * shape.k;
  bench.yFloats = shape.m * shape.n;
  bench.build = [dense, shape](MLIRContext &context) -> OwningOpRef<ModuleOp> {
    bool i8 = dense.type == "i8";
    std::string x = llvm::formatv("tensor<{0}x{1}xf32>", shape.m, shape.k);
    std::string y = llvm::formatv("tensor<{0}x{1}xf32>", shape.m, shape.n);
    std::string w =
        llvm::formatv("tensor<{0}x{1}x{2}>", shape.n, shape.k, dense.type);
    std::string s = llvm::formatv("tensor<{0}xf32>", shape.n);
    std::string text;
    llvm::raw_string_ostream os(text);
    os << "func.func @layers(%x: " << x << ") -> " << y << " {\n"
       << "  %w = arith.constant dense<" << (i8 ? "0" : "0.0") << "> : " << w
       << "\n";
    if (i8)
      os << "  %s = arith.constant dense<0.01> : " << s << "\n";
    os << "  %y = bitnet.dense_matmul %x, %w" << (i8 ? " scales %s" : "")
       << (i8 && dense.quantizeInput ? " {quantize_input}" : "") << " : " << x
       << ", " << w << (i8 ? ", " + s : "") << " -> " << y << "\n"
       << "  return %y : " << y << "\n}\n";
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
    if (!module)
      return nullptr;
    // Random weights in place of the splat: about N(0, 0.02) floats, or
    // int8 codes, drawn as bits.
    std::mt19937 rng(static_cast<unsigned>(shape.n * 31 + shape.k));
    int64_t count = shape.n * shape.k;
    auto c = cast<arith::ConstantOp>(
        &module->lookupSymbol<func::FuncOp>("layers").front().front());
    auto type = cast<RankedTensorType>(c.getType());
    DenseElementsAttr value;
    if (dense.type == "f32") {
      std::normal_distribution<float> normal(0.0f, 0.02f);
      std::vector<float> v(count);
      for (float &f : v)
        f = normal(rng);
      value = DenseElementsAttr::get(type, ArrayRef(v));
    } else {
      std::vector<uint16_t> v(i8 ? 0 : count);
      std::vector<int8_t> q(i8 ? count : 0);
      std::uniform_int_distribution<int> bits(0, 0xffff);
      bool brain = dense.type == "bf16";
      for (uint16_t &h : v) {
        // A sign, an exponent for 2^-10 .. 2^-3, any mantissa: f16 (5
        // exponent bits, bias 15) or bf16 (8 bits, bias 127).
        unsigned r = bits(rng);
        unsigned exponent = (brain ? 117 : 5) + (r >> 10) % 8;
        h = static_cast<uint16_t>(
            (r & 0x8000) |
            (brain ? (exponent << 7) | (bits(rng) & 0x7f)
                   : (exponent << 10) | (bits(rng) & 0x3ff)));
      }
      for (int8_t &b : q)
        b = static_cast<int8_t>(bits(rng) % 255 - 127);
      value = i8 ? DenseElementsAttr::get(type, ArrayRef(q))
                 : DenseElementsAttr::getFromRawBuffer(
                       type, ArrayRef(reinterpret_cast<const char *>(v.data()),
                                      v.size() * 2));
    }
    c.setValueAttr(value);
    return module;
  };
  return bench;
}

/// The cache file: {"version": 3, "machines": {machine: {key: times}}},
/// where a bitlinear shape's times are {"mad_ns", "lut_ns", "prefetch_of",
/// "prefetch_ns": {bytes: ns}} and a dense shape's {"default_ns",
/// "shapes_ns": {"RxVxP": ns}}. The choices are made from the times again
/// at every compile.
class TuningCache {
public:
  explicit TuningCache(std::string path) : path(std::move(path)) {}

  /// Reads the file; a missing file is an empty cache, a damaged one (or
  /// one of another version) a warning and an empty cache (it is rewritten).
  void read() {
    auto buffer = llvm::MemoryBuffer::getFile(path);
    if (!buffer)
      return;
    llvm::Expected<llvm::json::Value> value =
        llvm::json::parse((*buffer)->getBuffer());
    llvm::json::Object *machines = nullptr;
    if (value)
      if (llvm::json::Object *root = value->getAsObject())
        if (root->getInteger("version") == kVersion)
          machines = root->getObject("machines");
    if (!machines) {
      if (!value)
        llvm::consumeError(value.takeError());
      llvm::WithColor::warning(llvm::errs(), "bitnet-compile")
          << "the tuning cache " << path
          << " is not one this compiler wrote; it is started again\n";
      return;
    }
    data = std::move(*machines);
  }

  const llvm::json::Object *lookup(StringRef machine, StringRef key) const {
    const llvm::json::Object *entries = data.getObject(machine);
    return entries ? entries->getObject(key) : nullptr;
  }

  void store(StringRef machine, StringRef key, llvm::json::Object times) {
    llvm::json::Object *entries = data.getObject(machine);
    if (!entries) {
      data[machine.str()] = llvm::json::Object();
      entries = data.getObject(machine);
    }
    (*entries)[key.str()] = std::move(times);
  }

  /// Writes the file through a temporary one and a rename, so that a
  /// concurrent compile never reads half of it.
  llvm::Error write() {
    StringRef dir = llvm::sys::path::parent_path(path);
    if (!dir.empty())
      if (std::error_code ec = llvm::sys::fs::create_directories(dir))
        return makeError("cannot create " + dir + ": " + ec.message());
    std::string temporary = path + ".tmp" + std::to_string(llvm::sys::Process::getProcessId());
    {
      std::error_code ec;
      llvm::raw_fd_ostream os(temporary, ec);
      if (ec)
        return makeError("cannot write " + path + ": " + ec.message());
      llvm::json::Object root{{"version", kVersion},
                              {"machines", llvm::json::Object(data)}};
      os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
    }
    if (std::error_code ec = llvm::sys::fs::rename(temporary, path)) {
      llvm::sys::fs::remove(temporary);
      return makeError("cannot write " + path + ": " + ec.message());
    }
    return llvm::Error::success();
  }

private:
  static constexpr int64_t kVersion = 3;
  std::string path;
  llvm::json::Object data;
};

/// A positive integer `key` of `object`, or nothing.
std::optional<int64_t> positive(const llvm::json::Object *object,
                                StringRef key) {
  std::optional<int64_t> v = object ? object->getInteger(key) : std::nullopt;
  return v && *v > 0 ? v : std::nullopt;
}

/// A bitlinear shape's times: the families' at the default prefetch
/// distance, then, for the family the shape takes (`prefetchOf`: "mad",
/// "lut" or "auto", the cost model's), the default distance's and each
/// candidate's.
struct LayerTimes {
  int64_t familyNs[std::size(kFamilies)];
  std::string prefetchOf;
  int64_t defaultPrefetchNs;
  int64_t prefetchNs[std::size(kPrefetchCandidates)];

  static std::optional<LayerTimes> fromJSON(const llvm::json::Object *o) {
    LayerTimes t;
    for (size_t i = 0; i < std::size(kFamilies); ++i) {
      std::optional<int64_t> ns =
          positive(o, std::string(kFamilies[i]) + "_ns");
      if (!ns)
        return std::nullopt;
      t.familyNs[i] = *ns;
    }
    std::optional<StringRef> of = o->getString("prefetch_of");
    const llvm::json::Object *p = o->getObject("prefetch_ns");
    std::optional<int64_t> base = positive(p, "default");
    if (!of || !base)
      return std::nullopt;
    t.prefetchOf = of->str();
    t.defaultPrefetchNs = *base;
    for (size_t i = 0; i < std::size(kPrefetchCandidates); ++i) {
      std::optional<int64_t> ns =
          positive(p, std::to_string(kPrefetchCandidates[i]));
      if (!ns)
        return std::nullopt;
      t.prefetchNs[i] = *ns;
    }
    return t;
  }
  llvm::json::Object toJSON() const {
    llvm::json::Object o, p{{"default", defaultPrefetchNs}};
    for (size_t i = 0; i < std::size(kFamilies); ++i)
      o[std::string(kFamilies[i]) + "_ns"] = familyNs[i];
    for (size_t i = 0; i < std::size(kPrefetchCandidates); ++i)
      p[std::to_string(kPrefetchCandidates[i])] = prefetchNs[i];
    o["prefetch_of"] = prefetchOf;
    o["prefetch_ns"] = std::move(p);
    return o;
  }
};

/// The family a shape takes from its times: the faster where it measured
/// clearly faster, else "auto" (the cost model's).
std::string familyOf(const int64_t (&ns)[std::size(kFamilies)]) {
  size_t best = ns[1] < ns[0] ? 1 : 0, other = 1 - best;
  // A layer alone is not the model: its neighbours' traffic and the caches
  // they leave differ. A family replaces the cost model's choice only where
  // it measured clearly faster.
  return ns[best] * (1.0 + kTunedMargin) <= ns[other] ? kFamilies[best]
                                                      : "auto";
}

/// The index of the fastest of `ns` where it is clearly faster than
/// `baseline`, else -1.
int clearlyFastest(ArrayRef<int64_t> ns, int64_t baseline) {
  int best = -1;
  for (size_t i = 0; i < ns.size(); ++i)
    if (ns[i] * (1.0 + kTunedMargin) <= baseline &&
        (best < 0 || ns[i] < ns[best]))
      best = static_cast<int>(i);
  return best;
}

} // namespace

std::string mlir::bitnet::defaultTuningCachePath() {
  SmallString<256> path;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    path = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(path, home, ".cache");
  else
    path = ".";
  llvm::sys::path::append(path, "bitnet-mlir", "tuning.json");
  return path.str().str();
}

llvm::Error mlir::bitnet::tuneKernels(ModuleOp module, CompileOptions &options,
                                      const TuneSettings &settings) {
  auto note = [&](const llvm::Twine &message) {
    if (!settings.quiet)
      llvm::errs() << "bitnet-compile: " << message << "\n";
  };
  ResolvedTarget target = resolveTarget(options.target);
  if (options.backend != "cpu" || !target.isHost ||
      !(options.target.cpu.empty() || options.target.cpu == "native") ||
      !options.target.features.empty())
    return makeError("--tune times kernels on this machine: it needs code for "
                     "this machine's CPU (no --target, --cpu or --features)");
  if (options.kernels != "auto") {
    note("--tune: --kernels=" + options.kernels + " leaves no choice to time");
    return llvm::Error::success();
  }
  std::string features = getCheckableFeatures(target);
  SmallVector<StringRef> featureList;
  StringRef(features).split(featureList, ',');
  auto has = [&](StringRef f) { return llvm::is_contained(featureList, f); };
  // Bitlinear layers: the two families and their prefetch distance, where
  // the CPU has both families (AVX-512 VNNI and VBMI). Dense layers: the
  // block shape, on x86 with AVX2 (8 floats a vector) or AVX-512 (16).
  bool tuneLayers = has("avx512vnni") && has("avx512vbmi");
  // Weights laid out for a larger step (a prefill entry beside the
  // one-token step) fix each layer's family.
  if (tuneLayers && options.layoutTokens > 1) {
    note(llvm::formatv("--tune: the weights are laid out for the {0}-token "
                       "step, which sets each bitlinear layer's kernel; "
                       "only dense layers are timed",
                       options.layoutTokens));
    tuneLayers = false;
  }
  int64_t lanes = has("avx512vnni") && has("avx512bw") ? 16
                  : has("avx2") && has("fma")          ? 8
                                                       : 0;

  // The distinct shapes, and whether the weights outgrow the cache.
  llvm::MapVector<std::string, LayerShape, llvm::StringMap<unsigned>> shapes;
  llvm::MapVector<std::string, DenseShape, llvm::StringMap<unsigned>> denseShapes;
  int64_t weightBytes = 0;
  module.walk([&](Operation *op) {
    if (auto linear = dyn_cast<BitLinearOp>(op)) {
      RankedTensorType xType = linear.getInput().getType();
      TernaryType w = linear.getWeight().getType();
      weightBytes += llvm::divideCeil(w.getRows() * w.getCols(), 4);
      if (!tuneLayers || !xType.hasStaticShape() || w.getCols() == 0)
        return;
      LayerShape shape{xType.getNumElements() / w.getCols(), w.getRows(),
                       w.getCols()};
      shapes.insert({shape.name(), shape});
    } else if (auto dense = dyn_cast<DenseMatmulOp>(op)) {
      RankedTensorType xType = dense.getInput().getType();
      RankedTensorType wType = dense.getWeight().getType();
      if (wType.hasStaticShape())
        weightBytes += wType.getNumElements() *
                       wType.getElementTypeBitWidth() / 8;
      Type element = wType.getElementType();
      std::string type = element.isF32()        ? "f32"
                         : element.isF16()      ? "f16"
                         : element.isBF16()     ? "bf16"
                         : element.isInteger(8) ? "i8"
                                                : "";
      if (!lanes || type.empty() || !xType.hasStaticShape() ||
          !wType.hasStaticShape() || wType.getDimSize(1) == 0 ||
          (type == "i8") != bool(dense.getScales()))
        return;
      // What --float-weights makes of it (bitnet-narrow-float-weights): the
      // kernel the model gets, whose times the cache keeps.
      FloatPrecision precision = options.floatWeights;
      bool rows8 = precision == FloatPrecision::Int8 ||
                   precision == FloatPrecision::W8A8;
      if (precision == FloatPrecision::F16 && type == "f32")
        type = "f16";
      if (precision == FloatPrecision::BF16 && type == "f32")
        type = "bf16";
      std::string kernelType = rows8 && type != "i8" ? "i8" : type;
      bool w8a8 = dense.getQuantizeInput() ||
                  (precision == FloatPrecision::W8A8 && kernelType == "i8");
      if (w8a8 && lanes != 16)
        return; // the reference lowering
      LayerShape shape{xType.getNumElements() / wType.getDimSize(1),
                       wType.getDimSize(0), wType.getDimSize(1)};
      denseShapes.insert({shape.name(), DenseShape{shape, type, kernelType,
                                                   w8a8}});
    }
  });
  if (shapes.empty() && denseShapes.empty()) {
    note(tuneLayers || lanes
             ? "--tune: the model has no layer of static shape to time"
             : "--tune: this CPU (" + target.cpu +
                   ") offers no kernel choice to time");
    return llvm::Error::success();
  }
  bool cold = weightBytes > settings.cacheBytes;
  std::string machine = machineKey(target);
  TuningCache cache(settings.cachePath);
  cache.read();

  bitnet_thread_pool *pool = nullptr;
  if (settings.threads > 1)
    if (bitnet_status s = bitnet_thread_pool_create(settings.threads, &pool))
      return statusError(s, "cannot start the tuning threads");
  llvm::scope_exit releasePool([&] { bitnet_thread_pool_release(pool); });
  // The candidates' compiles would drive the model's progress line.
  setProgressLine(nullptr);

  std::string where = llvm::formatv("{0}/t{1}", cold ? "memory" : "cache",
                                    settings.threads);
  int measured = 0;
  auto announce = [&] {
    if (measured++ == 0)
      note(llvm::formatv("--tune: timing the kernels of {0} layer shape(s) "
                         "on {1} thread(s), weights {2}",
                         shapes.size() + denseShapes.size(), settings.threads,
                         cold ? "from memory" : "in cache"));
  };
  auto show = [&](bool fromCache) {
    return settings.verbose || (!settings.quiet && !fromCache);
  };
  std::string percent = std::to_string(int(kTunedMargin * 100)) + "%";

  for (const auto &[name, shape] : shapes) {
    std::string key = name + "/" + where;
    std::optional<LayerTimes> times;
    if (!settings.refresh)
      times = LayerTimes::fromJSON(cache.lookup(machine, key));
    bool fromCache = times.has_value();
    if (!times) {
      announce();
      Bench bench = layerBench(shape, cold, settings.cacheBytes);
      // The families, then the prefetch distances of the one the shape
      // takes (the cost model's where neither is clearly faster). The
      // family's own build is timed again beside the distances, in the same
      // rounds, without compiling it again.
      CompiledCandidates compiled;
      SmallVector<SmallVector<std::string, 1>> candidates;
      for (const char *family : kFamilies)
        candidates.push_back({name + ":" + family + ":0:0"});
      llvm::Expected<SmallVector<int64_t>> familyNs =
          measure(bench, options, candidates, pool, &compiled);
      if (!familyNs)
        return familyNs.takeError();
      LayerTimes fresh;
      llvm::copy(*familyNs, fresh.familyNs);
      fresh.prefetchOf = familyOf(fresh.familyNs);
      candidates = {{name + ":" + fresh.prefetchOf + ":0:0"}};
      for (int64_t distance : kPrefetchCandidates)
        candidates.push_back({llvm::formatv("{0}:{1}:0:0:{2}", name,
                                            fresh.prefetchOf, distance)});
      llvm::Expected<SmallVector<int64_t>> prefetchNs =
          measure(bench, options, candidates, pool, &compiled);
      if (!prefetchNs)
        return prefetchNs.takeError();
      fresh.defaultPrefetchNs = (*prefetchNs)[0];
      std::copy(prefetchNs->begin() + 1, prefetchNs->end(), fresh.prefetchNs);
      cache.store(machine, key, fresh.toJSON());
      times = std::move(fresh);
    }
    std::string family = familyOf(times->familyNs);
    // Prefetch times are of the family chosen when they were measured.
    int best = family == times->prefetchOf
                   ? clearlyFastest(times->prefetchNs, times->defaultPrefetchNs)
                   : -1;
    if (family != "auto" || best >= 0) {
      std::string entry = llvm::formatv("{0}:{1}:{2}:{3}", name, family,
                                        times->familyNs[0], times->familyNs[1]);
      if (best >= 0)
        entry += ":" + std::to_string(kPrefetchCandidates[best]);
      options.tunedKernels.push_back(entry);
    }
    if (show(fromCache)) {
      std::string prefetches;
      for (size_t i = 0; i < std::size(kPrefetchCandidates); ++i)
        prefetches += llvm::formatv(" {0}:{1:f2}", kPrefetchCandidates[i],
                                    times->prefetchNs[i] / 1e3);
      note(llvm::formatv(
          "  {0,-16} mad {1,9:f2} us  lut {2,9:f2} us  -> {3}; prefetch "
          "default:{4:f2}{5} us -> {6}{7}",
          name, times->familyNs[0] / 1e3, times->familyNs[1] / 1e3,
          family == "auto" ? "within " + percent + ": the cost model's"
                           : family,
          times->defaultPrefetchNs / 1e3, prefetches,
          best >= 0 ? std::to_string(kPrefetchCandidates[best]) + " bytes"
                    : "the default (within " + percent + ")",
          fromCache ? " (cached)" : ""));
    }
  }

  ArrayRef<BlockCandidate> denseCandidates =
      lanes == 16 ? ArrayRef(kDenseCandidates16) : ArrayRef(kDenseCandidates8);
  for (const auto &[name, dense] : denseShapes) {
    // A W8A8 kernel takes rows x vectors rows a block: shapes that give the
    // same rows and distance are one candidate.
    SmallVector<BlockCandidate> distinct;
    llvm::StringSet<> seen;
    for (const BlockCandidate &c : denseCandidates)
      if (seen.insert(dense.quantizeInput
                          ? llvm::formatv("{0}x{1}", c.rows * c.vectors,
                                          c.prefetch)
                                .str()
                          : c.name())
              .second)
        distinct.push_back(c);
    std::string key =
        llvm::formatv("dense/{0}/{1}{2}/{3}", name, dense.kernelType,
                      dense.quantizeInput ? "-w8a8" : "", where);
    const llvm::json::Object *cached =
        settings.refresh ? nullptr : cache.lookup(machine, key);
    std::optional<int64_t> defaultNs = positive(cached, "default_ns");
    const llvm::json::Object *cachedShapes =
        cached ? cached->getObject("shapes_ns") : nullptr;
    SmallVector<int64_t> ns;
    for (const BlockCandidate &c : distinct)
      if (std::optional<int64_t> t = positive(cachedShapes, c.name()))
        ns.push_back(*t);
    bool fromCache = defaultNs && ns.size() == distinct.size();
    if (!fromCache) {
      announce();
      Bench bench = denseBench(dense, cold, settings.cacheBytes);
      std::string benchShape = llvm::formatv(
          "{0}x{1}x{2}", dense.shape.m,
          bench.yFloats / dense.shape.m, dense.shape.k);
      SmallVector<SmallVector<std::string, 1>> candidates = {{}};
      for (const BlockCandidate &c : distinct)
        candidates.push_back({llvm::formatv("dense:{0}:{1}:{2}:{3}:0:0",
                                            benchShape, c.rows, c.vectors,
                                            c.prefetch)});
      llvm::Expected<SmallVector<int64_t>> fresh =
          measure(bench, options, candidates, pool);
      if (!fresh)
        return fresh.takeError();
      defaultNs = (*fresh)[0];
      ns.assign(fresh->begin() + 1, fresh->end());
      llvm::json::Object shapesNs;
      for (size_t i = 0; i < distinct.size(); ++i)
        shapesNs[distinct[i].name()] = ns[i];
      cache.store(machine, key,
                  llvm::json::Object{{"default_ns", *defaultNs},
                                     {"shapes_ns", std::move(shapesNs)}});
    }
    int best = clearlyFastest(ns, *defaultNs);
    if (best >= 0) {
      const BlockCandidate &c = distinct[best];
      options.tunedKernels.push_back(
          llvm::formatv("dense:{0}:{1}:{2}:{3}:{4}:{5}", name, c.rows,
                        c.vectors, c.prefetch, ns[best], *defaultNs));
    }
    if (show(fromCache)) {
      std::string all;
      for (size_t i = 0; i < distinct.size(); ++i)
        all += llvm::formatv(" {0}:{1:f2}", distinct[i].name(), ns[i] / 1e3);
      note(llvm::formatv("  dense {0} {1}{2}: default {3:f2} us,{4} -> {5}{6}",
                         name, dense.kernelType,
                         dense.quantizeInput ? " w8a8" : "", *defaultNs / 1e3, all,
                         best >= 0 ? distinct[best].name()
                                   : "the default (within " + percent + ")",
                         fromCache ? " (cached)" : ""));
    }
  }
  if (measured) {
    // The measurements still serve this compile.
    if (llvm::Error error = cache.write())
      llvm::WithColor::warning(llvm::errs(), "bitnet-compile")
          << "--tune: " << llvm::toString(std::move(error))
          << "; the times are not kept\n";
    else
      note("--tune: kept in " + settings.cachePath);
  } else {
    note(llvm::formatv("--tune: {0} layer shape(s) from {1}",
                       shapes.size() + denseShapes.size(), settings.cachePath));
  }
  return llvm::Error::success();
}
