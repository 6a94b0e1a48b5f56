//===- Target.cpp - The targets a model is compiled for ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/Target.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

using namespace mlir;
using namespace mlir::bitnet;

struct ProgressLine::State {
  using Clock = std::chrono::steady_clock;
  llvm::raw_ostream &os;
  std::chrono::milliseconds after;
  Clock::time_point start = Clock::now();
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  int depth = 0;
  std::string stage;
  Clock::time_point stageStart;
  bool lineShown = false;
  std::thread ticker;

  State(llvm::raw_ostream &os, std::chrono::milliseconds after)
      : os(os), after(after) {}

  static double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
  }
  /// Redraws the running stage's line (with `mutex` held).
  void draw() {
    os << "\r\033[Kbitnet-compile: " << stage << " ... "
       << llvm::format("%.1f s", seconds(Clock::now() - stageStart));
    os.flush();
    lineShown = true;
  }
  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(200));
      if (!stopping && depth > 0 && Clock::now() - start >= after)
        draw();
    }
  }
};

ProgressLine::ProgressLine(llvm::raw_ostream &os,
                           std::chrono::milliseconds after)
    : state(std::make_unique<State>(os, after)) {
  state->ticker = std::thread([s = state.get()] { s->run(); });
}

ProgressLine::~ProgressLine() {
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->stopping = true;
  }
  state->wake.notify_all();
  state->ticker.join();
  if (state->lineShown)
    state->os << "\r\033[K";
  state->os.flush();
}

void ProgressLine::begin(const Twine &name) {
  std::lock_guard<std::mutex> lock(state->mutex);
  if (state->depth++ > 0)
    return;
  state->stage = name.str();
  state->stageStart = State::Clock::now();
  if (state->stageStart - state->start >= state->after)
    state->draw();
}

void ProgressLine::end(bool succeeded) {
  std::lock_guard<std::mutex> lock(state->mutex);
  if (state->depth == 0 || --state->depth > 0)
    return;
  auto now = State::Clock::now();
  if (now - state->start < state->after)
    return;
  state->os << "\r\033[Kbitnet-compile: " << state->stage
            << (succeeded ? " done (" : " FAILED (")
            << llvm::format("%.1f s", State::seconds(now - state->stageStart))
            << ")\n";
  state->os.flush();
  state->lineShown = false;
}

static std::atomic<ProgressLine *> progressLine{nullptr};

void mlir::bitnet::setProgressLine(ProgressLine *line) { progressLine = line; }
ProgressLine *mlir::bitnet::getProgressLine() { return progressLine; }

LogicalResult StageTimer::step(const Twine &name,
                               llvm::function_ref<LogicalResult()> fn) {
  auto start = std::chrono::steady_clock::now();
  if (enabled)
    llvm::errs() << "bitnet-compile: " << name << " ...";
  ProgressLine *progress = enabled ? nullptr : getProgressLine();
  if (progress)
    progress->begin(name);
  LogicalResult result = fn();
  if (progress)
    progress->end(succeeded(result));
  if (enabled) {
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    llvm::errs() << (succeeded(result) ? " done" : " FAILED") << " ("
                 << llvm::format("%.1f", ms) << " ms)\n";
  }
  return result;
}

Compilation::Compilation(bool verbose) : timer(verbose) {}

Compilation::~Compilation() {
  for (const std::string &path : temporaries)
    llvm::sys::fs::remove(path);
}

FailureOr<std::string> Compilation::createTemporaryFile(Location loc,
                                                        StringRef suffix) {
  llvm::SmallString<128> path;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("bitnet-model", suffix, path))
    return emitError(loc) << "cannot create a temporary file: "
                          << ec.message();
  temporaries.push_back(path.str().str());
  return temporaries.back();
}

LogicalResult Compilation::writeAtomically(
    Location loc, StringRef outputPath,
    function_ref<LogicalResult(StringRef)> write) {
  llvm::SmallString<256> path;
  int fd = -1;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(
          outputPath + ".tmp-%%%%%%", fd, path))
    return emitError(loc) << "cannot write '" << outputPath
                          << "': " << ec.message();
  llvm::sys::Process::SafelyCloseFileDescriptor(fd);
  temporaries.push_back(path.str().str());
  if (failed(write(path)))
    return failure();
  if (std::error_code ec = llvm::sys::fs::rename(path, outputPath))
    return emitError(loc) << "cannot write '" << outputPath
                          << "': " << ec.message();
  return success();
}

TargetBackend::~TargetBackend() = default;

LogicalResult TargetBackend::runPipeline(
    ModuleOp module, const CompileOptions &options,
    void (*build)(OpPassManager &, const PipelineOptions &),
    llvm::function_ref<void(PipelineOptions &)> configure) {
  PassManager pm(module->getName());
  if (options.applyPassManagerCLOptions &&
      failed(applyPassManagerCLOptions(pm)))
    return failure();
  PipelineOptions pipeline;
  fillPipelineOptions(options, pipeline);
  if (configure)
    configure(pipeline);
  build(pm, pipeline);
  return pm.run(module);
}

namespace {
struct Registry {
  std::mutex mutex;
  llvm::StringMap<std::unique_ptr<TargetBackend>> targets;
};
} // namespace

static Registry &getRegistry() {
  static Registry registry;
  return registry;
}

void mlir::bitnet::registerTarget(std::unique_ptr<TargetBackend> target) {
  Registry &registry = getRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  std::string name = target->getName().str();
  registry.targets[name] = std::move(target);
}

const TargetBackend *mlir::bitnet::lookupTarget(StringRef name) {
  Registry &registry = getRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.targets.find(name);
  return it == registry.targets.end() ? nullptr : it->second.get();
}

SmallVector<StringRef> mlir::bitnet::getRegisteredTargetNames() {
  Registry &registry = getRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  SmallVector<StringRef> names;
  for (auto &entry : registry.targets)
    names.push_back(entry.getKey());
  llvm::sort(names);
  return names;
}
