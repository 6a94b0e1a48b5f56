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

#include <chrono>
#include <mutex>

using namespace mlir;
using namespace mlir::bitnet;

LogicalResult StageTimer::step(const Twine &name,
                               llvm::function_ref<LogicalResult()> fn) {
  auto start = std::chrono::steady_clock::now();
  if (enabled)
    llvm::errs() << "bitnet-compile: " << name << " ...";
  LogicalResult result = fn();
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
