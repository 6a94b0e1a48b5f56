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

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
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

/// A kernel family the tuner compares, and the --kernels value that forces
/// it.
struct Candidate {
  const char *family, *kernels;
};
constexpr Candidate kCandidates[] = {{"mad", "avx512vnni"},
                                     {"lut", "avx512-lut"}};

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
std::string layerModule(const LayerShape &shape, int64_t copies) {
  std::mt19937 rng(static_cast<unsigned>(shape.n * 31 + shape.k));
  std::uniform_int_distribution<int> code(0, 2);
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
  for (int64_t c = 0; c < copies; ++c) {
    os << "  %w" << c << " = bitnet.constant dense<\"0x";
    for (int64_t i = 0; i < shape.n * bytesPerRow; ++i) {
      unsigned byte = 0;
      for (int b = 0; b < 4; ++b)
        byte |= static_cast<unsigned>(code(rng)) << (2 * b);
      os << llvm::hexdigit(byte >> 4) << llvm::hexdigit(byte & 15);
    }
    os << "\"> : tensor<" << shape.n << "x" << bytesPerRow << "xi8> -> " << t
       << "\n  %y" << c << " = bitnet.bitlinear %x, %w" << c << " scale %s : "
       << x << ", " << t << ", tensor<f32> -> " << y << "\n";
  }
  os << "  return";
  for (int64_t c = 0; c < copies; ++c)
    os << (c ? ", " : " ") << "%y" << c;
  os << " : " << llvm::join(results, ", ") << "\n}\n";
  return text;
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

/// Compiles `copies` layers of `shape` with `kernels` into a temporary
/// shared object.
llvm::Expected<std::string> compileLayer(const LayerShape &shape,
                                         int64_t copies,
                                         const CompileOptions &base,
                                         StringRef kernels) {
  MLIRContext context;
  prepareContext(context);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(layerModule(shape, copies), &context);
  if (!module)
    return makeError("cannot build the " + shape.name() + " layer");
  SmallString<128> path;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("bitnet-tune", "so", path))
    return makeError("cannot create a temporary file: " + ec.message());
  CompileOptions options = base;
  options.emit = EmitKind::SharedObject;
  options.stage = MLIRStage::Input;
  options.kernels = kernels.str();
  options.tunedKernels.clear();
  options.variants.clear();
  options.verbose = false;
  options.applyPassManagerCLOptions = false;
  options.lastTokenLogits = false;
  if (failed(compileModule(*module, options, path))) {
    llvm::sys::fs::remove(path);
    return makeError("cannot compile the " + shape.name() + " layer with --kernels=" +
                     kernels);
  }
  return path.str().str();
}

struct Measurement {
  /// Median nanoseconds of one call, per candidate (kCandidates' order).
  int64_t ns[std::size(kCandidates)];
};

/// Times the candidates of `shape` in alternating rounds. Weights that
/// stream from memory in the model (`cold`) stream so here: enough copies of
/// the layer that one call reads twice `cacheBytes`.
llvm::Expected<Measurement> measure(const LayerShape &shape,
                                    const CompileOptions &options, bool cold,
                                    int64_t cacheBytes,
                                    bitnet_thread_pool *pool) {
  int64_t layerBytes = std::max<int64_t>(1, shape.n * ((shape.k + 3) / 4));
  int64_t copies =
      cold ? std::clamp<int64_t>(2 * cacheBytes / layerBytes, 1, 256) : 1;
  std::vector<std::unique_ptr<LoadedLayer>> layers;
  std::vector<std::string> paths;
  llvm::scope_exit cleanup([&] {
    layers.clear();
    for (const std::string &p : paths)
      llvm::sys::fs::remove(p);
  });
  for (const Candidate &c : kCandidates) {
    llvm::Expected<std::string> path =
        compileLayer(shape, copies, options, c.kernels);
    if (!path)
      return path.takeError();
    paths.push_back(*path);
    auto layer = LoadedLayer::load(*path, pool);
    if (!layer)
      return layer.takeError();
    layers.push_back(std::move(*layer));
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(shape.m * shape.k), y(copies * shape.m * shape.n);
  for (float &v : x)
    v = normal(rng);
  using Clock = std::chrono::steady_clock;
  std::vector<std::vector<double>> times(layers.size());
  // Rounds of a few calls each, alternating, so that a neighbour's burst of
  // work on a shared machine falls on both.
  constexpr int kRounds = 7, kCallsPerRound = 5, kWarmup = 2;
  for (int round = 0; round < kRounds; ++round)
    for (size_t i = 0; i < layers.size(); ++i)
      for (int call = 0; call < kCallsPerRound + (round == 0 ? kWarmup : 0);
           ++call) {
        auto start = Clock::now();
        if (llvm::Error error =
                layers[i]->run(x.data(), y.data(), copies, shape.m * shape.n))
          return std::move(error);
        double ns =
            std::chrono::duration<double, std::nano>(Clock::now() - start)
                .count() /
            copies;
        if (round > 0 || call >= kWarmup)
          times[i].push_back(ns);
      }
  Measurement result;
  for (size_t i = 0; i < times.size(); ++i) {
    std::vector<double> &t = times[i];
    std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
    result.ns[i] = static_cast<int64_t>(t[t.size() / 2]);
  }
  return result;
}

/// The cache file: {"version": 1, "machines": {machine: {key: {"family",
/// "mad_ns", "lut_ns"}}}}.
class TuningCache {
public:
  explicit TuningCache(std::string path) : path(std::move(path)) {}

  /// Reads the file; a missing file is an empty cache, a damaged one a
  /// warning and an empty cache (it is rewritten).
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

  std::optional<Measurement> lookup(StringRef machine, StringRef key) const {
    const llvm::json::Object *entries = data.getObject(machine);
    const llvm::json::Object *entry = entries ? entries->getObject(key) : nullptr;
    if (!entry)
      return std::nullopt;
    Measurement m;
    for (size_t i = 0; i < std::size(kCandidates); ++i) {
      std::optional<int64_t> ns =
          entry->getInteger(std::string(kCandidates[i].family) + "_ns");
      if (!ns || *ns <= 0)
        return std::nullopt;
      m.ns[i] = *ns;
    }
    return m;
  }

  void store(StringRef machine, StringRef key, const Measurement &m,
             StringRef family) {
    llvm::json::Object *entries = data.getObject(machine);
    if (!entries) {
      data[machine.str()] = llvm::json::Object();
      entries = data.getObject(machine);
    }
    llvm::json::Object entry{{"family", family}};
    for (size_t i = 0; i < std::size(kCandidates); ++i)
      entry[std::string(kCandidates[i].family) + "_ns"] = m.ns[i];
    (*entries)[key.str()] = std::move(entry);
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
  static constexpr int64_t kVersion = 1;
  std::string path;
  llvm::json::Object data;
};
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
  if (!llvm::is_contained(featureList, "avx512vnni") ||
      !llvm::is_contained(featureList, "avx512vbmi")) {
    note("--tune: this CPU (" + target.cpu +
         ") has one kernel family for bitlinear layers; nothing to time");
    return llvm::Error::success();
  }

  // The distinct shapes, and whether the weights outgrow the cache.
  llvm::MapVector<std::string, LayerShape, llvm::StringMap<unsigned>> shapes;
  int64_t weightBytes = 0;
  module.walk([&](BitLinearOp op) {
    RankedTensorType xType = op.getInput().getType();
    TernaryType w = op.getWeight().getType();
    weightBytes += llvm::divideCeil(w.getRows() * w.getCols(), 4);
    if (!xType.hasStaticShape() || w.getCols() == 0)
      return;
    LayerShape shape{xType.getNumElements() / w.getCols(), w.getRows(),
                     w.getCols()};
    shapes.insert({shape.name(), shape});
  });
  if (shapes.empty()) {
    note("--tune: the model has no bitlinear layer of static shape");
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

  int measured = 0;
  for (const auto &[name, shape] : shapes) {
    std::string key = llvm::formatv("{0}/{1}/t{2}", name,
                                    cold ? "memory" : "cache", settings.threads);
    std::optional<Measurement> m;
    if (!settings.refresh)
      m = cache.lookup(machine, key);
    bool fromCache = m.has_value();
    if (!m) {
      if (!settings.quiet && measured == 0)
        note(llvm::formatv("--tune: timing the kernel families of {0} layer "
                           "shape(s) on {1} thread(s), weights {2}",
                           shapes.size(), settings.threads,
                           cold ? "from memory" : "in cache"));
      llvm::Expected<Measurement> fresh =
          measure(shape, options, cold, settings.cacheBytes, pool);
      if (!fresh)
        return fresh.takeError();
      m = *fresh;
      ++measured;
    }
    size_t best = 0, other = 1;
    if (m->ns[1] < m->ns[0])
      std::swap(best, other);
    StringRef family = kCandidates[best].family;
    if (!fromCache)
      cache.store(machine, key, *m, family);
    // A layer alone is not the model: its neighbours' traffic and the
    // caches they leave differ. A family replaces the cost model's choice
    // only where it measured clearly faster.
    bool clear = m->ns[best] * (1.0 + kTunedMargin) <= m->ns[other];
    if (clear)
      options.tunedKernels.push_back(
          llvm::formatv("{0}:{1}:{2}:{3}", name, family, m->ns[0], m->ns[1]));
    if (settings.verbose || (!settings.quiet && !fromCache))
      note(llvm::formatv("  {0,-16} mad {1,9:f2} us  lut {2,9:f2} us  -> {3}{4}",
                         name, m->ns[0] / 1e3, m->ns[1] / 1e3,
                         clear ? family.str()
                               : "within " +
                                     std::to_string(int(kTunedMargin * 100)) +
                                     "%: the cost model's choice",
                         fromCache ? " (cached)" : ""));
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
    note(llvm::formatv("--tune: {0} layer shape(s) from {1}", shapes.size(),
                       settings.cachePath));
  }
  return llvm::Error::success();
}
