//===- Compiler.cpp - The compiler as a library -----------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Compiler/Compiler.h"

#include "bitnet/Import/GGUF/GGUFImporter.h"
#include "bitnet/Import/HF/HFImporter.h"
#include "bitnet/Import/ONNX/ONNXImporter.h"
#include "bitnet/Pipelines/Pipelines.h"
#include "bitnet/Target/WeightData.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Triple.h"

#include <chrono>
#include <deque>

using namespace mlir;
using namespace mlir::bitnet;

#ifndef BITNET_VERSION
#define BITNET_VERSION "0.0.0"
#endif

std::optional<EmitKind> mlir::bitnet::parseEmitKind(StringRef name) {
  return llvm::StringSwitch<std::optional<EmitKind>>(name)
      .Case("mlir", EmitKind::MLIR)
      .Case("llvm", EmitKind::LLVM)
      .Case("obj", EmitKind::Object)
      .Case("so", EmitKind::SharedObject)
      .Case("ptx", EmitKind::PTX)
      .Case("tokenizer", EmitKind::Tokenizer)
      .Default(std::nullopt);
}

std::optional<MLIRStage> mlir::bitnet::parseMLIRStage(StringRef name) {
  return llvm::StringSwitch<std::optional<MLIRStage>>(name)
      .Case("input", MLIRStage::Input)
      .Case("linalg", MLIRStage::Linalg)
      .Case("bufferized", MLIRStage::Bufferized)
      .Case("llvm", MLIRStage::LLVM)
      .Default(std::nullopt);
}

StringRef mlir::bitnet::getDefaultExtension(EmitKind kind) {
  switch (kind) {
  case EmitKind::MLIR:
    return ".mlir";
  case EmitKind::LLVM:
    return ".ll";
  case EmitKind::Object:
    return ".o";
  case EmitKind::SharedObject:
    return ".so";
  case EmitKind::PTX:
    return ".ptx";
  case EmitKind::Tokenizer:
    return ".tokenizer.json";
  }
  llvm_unreachable("unknown emit kind");
}

FailureOr<KernelSelection>
mlir::bitnet::selectKernels(const CompileOptions &options, std::string &error) {
  ResolvedTarget target = resolveTarget(options.target);
  SmallVector<StringRef> features;
  std::string checkable = getCheckableFeatures(target);
  StringRef(checkable).split(features, ',');
  auto has = [&](ArrayRef<StringRef> needed) {
    return llvm::all_of(needed, [&](StringRef f) {
      return llvm::is_contained(features, f);
    });
  };
  // Best first: what each kernel family needs. `auto` takes the first the
  // target has; where that is the LUT family, a cost model chooses between
  // it and the MAD kernel per layer.
  struct Family {
    StringRef name;
    KernelSelection selection;
    SmallVector<StringRef> needs;
  };
  const Family families[] = {
      {"avx512-lut",
       {"avx512vnni", "lut"},
       {"avx512f", "avx512bw", "avx512vnni", "avx512vbmi"}},
      {"avx512vnni", {"avx512vnni", "mad"}, {"avx512f", "avx512bw", "avx512vnni"}},
      {"avxvnni", {"avxvnni", "mad"}, {"avx2", "avxvnni"}},
      {"avx2", {"avx2", "mad"}, {"avx2"}},
      {"neon", {"neon", "mad"}, {"dotprod"}},
  };
  if (options.kernels == "reference")
    return KernelSelection{"none", "mad"};
  if (options.kernels == "auto") {
    for (const Family &family : families) {
      if (!has(family.needs))
        continue;
      KernelSelection selection = family.selection;
      if (selection.family == "lut")
        selection.family = "auto";
      return selection;
    }
    return KernelSelection{"none", "mad"};
  }
  for (const Family &family : families) {
    if (options.kernels != family.name)
      continue;
    if (!has(family.needs)) {
      error = "--kernels=" + options.kernels + " needs a target with " +
              llvm::join(family.needs, ", ") + " (this one is " +
              target.triple + " " + target.cpu + ")";
      return failure();
    }
    return family.selection;
  }
  error = "unknown kernels '" + options.kernels +
          "' (expected auto, reference, avx512-lut, avx512vnni, avxvnni, "
          "avx2 or neon)";
  return failure();
}

StringRef mlir::bitnet::getProducerString() {
  return "bitnet-compile " BITNET_VERSION;
}

void mlir::bitnet::prepareContext(MLIRContext &context) {
  DialectRegistry registry;
  registerDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
}

static OwningOpRef<ModuleOp>
readModel(StringRef path, MLIRContext &context, llvm::SourceMgr &sourceMgr,
          ArrayRef<std::string> inputShapes, bool relaxedActivationScale,
          bool verbose) {
  if (path.ends_with(".onnx")) {
    ONNXImportOptions options;
    options.relaxedActivationScale = relaxedActivationScale;
    for (const std::string &spec : inputShapes) {
      std::string error = addInputShape(spec, options);
      if (!error.empty()) {
        emitError(UnknownLoc::get(&context)) << error;
        return {};
      }
    }
    return importONNXFile(path, context, options);
  }
  bool isGGUF = path.ends_with(".gguf");
  if (isGGUF || llvm::sys::fs::is_directory(path)) {
    CheckpointImportOptions options;
    options.verbose = verbose;
    for (const std::string &spec : inputShapes) {
      std::string error = addCheckpointInputShape(spec, options);
      if (!error.empty()) {
        emitError(UnknownLoc::get(&context)) << error;
        return {};
      }
    }
    return isGGUF ? importGGUFFile(path, context, options)
                  : importHFDirectory(path, context, options);
  }
  if (!inputShapes.empty()) {
    emitError(UnknownLoc::get(&context))
        << "--input-shape applies to ONNX models and checkpoints only";
    return {};
  }
  if (!path.ends_with(".mlir") && path != "-") {
    emitError(UnknownLoc::get(&context))
        << "cannot read '" << path
        << "': expected a .mlir, .onnx or .gguf file, a Hugging Face "
           "checkpoint directory, or - for standard input";
    return {};
  }
  std::string message;
  std::unique_ptr<llvm::MemoryBuffer> file = openInputFile(path, &message);
  if (!file) {
    emitError(UnknownLoc::get(&context)) << message;
    return {};
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, &context);
}

OwningOpRef<ModuleOp>
mlir::bitnet::loadModel(StringRef path, MLIRContext &context,
                        llvm::SourceMgr &sourceMgr,
                        ArrayRef<std::string> inputShapes,
                        bool relaxedActivationScale, bool verbose) {
  auto start = std::chrono::steady_clock::now();
  if (verbose)
    llvm::errs() << "bitnet-compile: reading " << path << " ...\n";
  OwningOpRef<ModuleOp> module = readModel(
      path, context, sourceMgr, inputShapes, relaxedActivationScale, verbose);
  if (verbose && module)
    llvm::errs() << "bitnet-compile: read " << path << " ("
                 << llvm::format("%.1f",
                                 std::chrono::duration<double, std::milli>(
                                     std::chrono::steady_clock::now() - start)
                                     .count())
                 << " ms)\n";
  return module;
}

llvm::Expected<std::string>
mlir::bitnet::readCheckpointTokenizer(StringRef path) {
  if (!path.ends_with(".gguf"))
    return tokenizerJSONFromHF(path);
  llvm::Expected<std::unique_ptr<gguf::File>> file = gguf::File::open(path);
  if (!file)
    return file.takeError();
  return tokenizerJSONFromGGUF(**file);
}

namespace {
/// Prints "[stage] name ... 12.3 ms" lines when verbose.
class Progress {
public:
  explicit Progress(bool enabled) : enabled(enabled) {}

  template <typename Fn>
  LogicalResult step(StringRef name, Fn &&fn) {
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

private:
  bool enabled;
};
} // namespace

namespace {
/// How the entry of one build is named and described.
struct EntryOptions {
  std::string runSymbol = "bitnet_model_run";
  bool emitInfo = true;
  /// Variant builds for the descriptor (bitnet-emit-entry-point's format).
  std::string variants;
};
} // namespace

static LogicalResult runPipeline(ModuleOp module, const CompileOptions &options,
                                 void (*build)(OpPassManager &,
                                               const PipelineOptions &),
                                 const EntryOptions &entry = {}) {
  PassManager pm(module->getName());
  if (options.applyPassManagerCLOptions &&
      failed(applyPassManagerCLOptions(pm)))
    return failure();
  PipelineOptions pipelineOptions;
  pipelineOptions.entry = options.entry;
  pipelineOptions.weightFormat = options.weightFormat;
  pipelineOptions.floatWeights = options.floatWeights;
  pipelineOptions.kvCache = options.kvCache;
  pipelineOptions.lastTokenLogits = options.lastTokenLogits;
  pipelineOptions.producer = getProducerString().str();
  ResolvedTarget target = resolveTarget(options.target);
  pipelineOptions.target = target.triple + " " + target.cpu;
  std::string error;
  FailureOr<KernelSelection> kernels = selectKernels(options, error);
  if (failed(kernels))
    return emitError(module.getLoc()) << error;
  pipelineOptions.cpuKernels = kernels->isa;
  pipelineOptions.cpuKernelFamily = kernels->family;
  pipelineOptions.cpuFeatures = getCheckableFeatures(target);
  pipelineOptions.runSymbol = entry.runSymbol;
  pipelineOptions.emitInfo = entry.emitInfo;
  pipelineOptions.variants = entry.variants;
  if (!options.gpuArch.empty()) {
    pipelineOptions.gpuArch = options.gpuArch;
    pipelineOptions.cudaPath = options.cudaPath;
    pipelineOptions.gpuEmulation = options.gpuEmulation;
    pipelineOptions.gpuGemvRows = options.gpuGemvRows;
    pipelineOptions.target = options.gpuArch + " (" + target.triple + " host)";
    pipelineOptions.cpuFeatures = "";
    std::string ptxas = options.cudaPath + "/bin/ptxas";
    if (options.emit == EmitKind::SharedObject &&
        llvm::sys::fs::can_execute(ptxas))
      pipelineOptions.ptxas = ptxas;
  }
  build(pm, pipelineOptions);
  return pm.run(module);
}

static LogicalResult writeText(StringRef outputPath,
                               function_ref<void(llvm::raw_ostream &)> write,
                               Location loc) {
  std::string message;
  std::unique_ptr<llvm::ToolOutputFile> out =
      openOutputFile(outputPath, &message);
  if (!out)
    return emitError(loc) << message;
  write(out->os());
  out->keep();
  return success();
}

static LogicalResult reportError(Location loc, llvm::Error error) {
  InFlightDiagnostic diag = emitError(loc);
  diag << llvm::toString(std::move(error));
  return diag;
}

/// Writes `llvmModule` as an object file to `path`.
static LogicalResult writeObject(llvm::Module &llvmModule,
                                 llvm::TargetMachine &machine, StringRef path,
                                 Location loc) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return emitError(loc) << "cannot write " << path << ": " << ec.message();
  if (llvm::Error error = emitObject(llvmModule, machine, os))
    return reportError(loc, std::move(error));
  return success();
}

/// A temporary object file, removed when this goes out of scope.
struct TemporaryObject {
  llvm::SmallString<128> path;
  std::optional<llvm::FileRemover> remover;

  LogicalResult create(Location loc, StringRef suffix = "o") {
    if (std::error_code ec =
            llvm::sys::fs::createTemporaryFile("bitnet-model", suffix, path))
      return emitError(loc) << "cannot create a temporary file: "
                            << ec.message();
    remover.emplace(path);
    return success();
  }
};

/// The files a shared object is linked from: objects, and the weight data
/// with the assembly that places it (WeightData.h).
struct LinkInputs {
  std::deque<TemporaryObject> files;
  std::vector<std::string> paths;

  /// Moves the large constants of `module` (lowered to the LLVM dialect) to
  /// a data file and an assembly file to link; their symbols start with
  /// `prefix`.
  LogicalResult outlineWeights(ModuleOp module, StringRef prefix,
                               Location loc, bool verbose = false) {
    TemporaryObject &data = files.emplace_back();
    TemporaryObject &assembly = files.emplace_back();
    if (failed(data.create(loc, "bin")) || failed(assembly.create(loc, "s")))
      return failure();
    llvm::Expected<OutlinedWeights> outlined =
        outlineWeightData(module, prefix, data.path, assembly.path);
    if (!outlined)
      return reportError(loc, outlined.takeError());
    if (verbose)
      llvm::errs() << " " << outlined->globals << " constants, "
                   << llvm::format("%.1f", outlined->bytes / 1048576.0)
                   << " MiB";
    paths.push_back(assembly.path.str().str());
    return success();
  }
};

/// Compiles a copy of `module` for the CPU `cpu` into an object whose entry
/// is a variant's run function; returns its entry for the descriptor.
static FailureOr<std::string> compileVariant(ModuleOp module,
                                             const CompileOptions &base,
                                             StringRef cpu, LinkInputs &link,
                                             Progress &progress) {
  Location loc = module.getLoc();
  CompileOptions options = base;
  options.target.cpu = cpu == "native" ? "" : cpu.str();
  ResolvedTarget target = resolveTarget(options.target);
  EntryOptions entry;
  entry.emitInfo = false;
  entry.runSymbol = "bitnet_model_run__";
  for (char c : target.cpu)
    entry.runSymbol += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';

  OwningOpRef<ModuleOp> copy(cast<ModuleOp>(module->clone()));
  auto step = [&](StringRef what, auto fn) {
    return progress.step((what + " for " + target.cpu).str(), fn);
  };
  if (failed(step("lowering to linalg", [&] {
        return runPipeline(*copy, options, buildLinalgPipeline, entry);
      })) ||
      failed(step("bufferizing", [&] {
        return runPipeline(*copy, options, buildBufferizePipeline, entry);
      })))
    return failure();
  // The workspace each build needs is its own.
  int64_t bytes = 0, alignment = 1;
  if (func::FuncOp func = lookupEntryFunction(*copy, options.entry)) {
    if (auto attr = func->getAttrOfType<IntegerAttr>("bitnet.workspace_bytes"))
      bytes = attr.getInt();
    if (auto attr =
            func->getAttrOfType<IntegerAttr>("bitnet.workspace_alignment"))
      alignment = attr.getInt();
  } else {
    return failure();
  }
  if (failed(step("lowering to the LLVM dialect", [&] {
        return runPipeline(*copy, options, buildLLVMPipeline, entry);
      })))
    return failure();
  int64_t stack = staticStackBytes(*copy);
  if (failed(link.outlineWeights(*copy, entry.runSymbol + "_weights_", loc)))
    return failure();
  llvm::Expected<std::unique_ptr<llvm::TargetMachine>> machine =
      createTargetMachine(options.target);
  if (!machine)
    return reportError(loc, machine.takeError());
  llvm::LLVMContext llvmContext;
  LogicalResult emitted = step("emitting code", [&]() -> LogicalResult {
    auto translated = translateAndOptimize(*copy, llvmContext, **machine,
                                           options.target.optLevel);
    if (!translated)
      return reportError(loc, translated.takeError());
    TemporaryObject &object = link.files.emplace_back();
    if (failed(object.create(loc)))
      return failure();
    link.paths.push_back(object.path.str().str());
    return writeObject(**translated, **machine, object.path, loc);
  });
  if (failed(emitted))
    return failure();
  return (target.cpu + "|" + entry.runSymbol + "|" + Twine(bytes) + "|" +
          Twine(alignment) + "|" + getCheckableFeatures(target) + "|" +
          Twine(stack))
      .str();
}

LogicalResult mlir::bitnet::compileModule(ModuleOp module,
                                          const CompileOptions &options,
                                          StringRef outputPath) {
  Location loc = module.getLoc();
  Progress progress(options.verbose);
  if (options.emit == EmitKind::Tokenizer) {
    auto meta = module->getAttrOfType<DictionaryAttr>("bitnet.metadata");
    auto tokenizer =
        meta ? meta.getAs<StringAttr>("bitnet.tokenizer") : StringAttr();
    if (!tokenizer)
      return emitError(loc) << "the model carries no tokenizer (a GGUF file "
                               "with tokenizer.ggml.* keys, or a checkpoint "
                               "directory with tokenizer.json, does)";
    return writeText(outputPath, [&](llvm::raw_ostream &os) {
      os << tokenizer.getValue() << "\n";
    }, loc);
  }
  auto emitMLIR = [&] {
    return writeText(outputPath, [&](llvm::raw_ostream &os) {
      module.print(os);
      os << "\n";
    }, loc);
  };
  bool mlirOut = options.emit == EmitKind::MLIR;
  if (!options.variants.empty() && options.emit != EmitKind::SharedObject)
    return emitError(loc) << "variant builds need --emit=so";

  // Variant builds first: the baseline's descriptor lists them.
  LinkInputs link;
  EntryOptions entry;
  for (const std::string &cpu : options.variants) {
    FailureOr<std::string> variant =
        compileVariant(module, options, cpu, link, progress);
    if (failed(variant))
      return failure();
    entry.variants += (entry.variants.empty() ? "" : ";") + *variant;
  }

  // The input stage: canonicalised, so folds (ternarisation, packing of
  // constants) are visible.
  if (mlirOut && options.stage == MLIRStage::Input) {
    PassManager pm(module->getName());
    pm.addPass(createCanonicalizerPass());
    if (failed(pm.run(module)))
      return failure();
    return emitMLIR();
  }
  if (!options.gpuArch.empty()) {
    if (options.emit == EmitKind::PTX) {
      if (failed(progress.step("compiling GPU kernels", [&] {
            return runPipeline(module, options, buildGPUKernelPipeline);
          })))
        return failure();
      auto binary = module.lookupSymbol<gpu::BinaryOp>("bitnet_kernels");
      auto object = binary ? dyn_cast<gpu::ObjectAttr>(binary.getObjects()[0])
                           : gpu::ObjectAttr();
      if (!object)
        return emitError(loc) << "no PTX was produced";
      return writeText(outputPath, [&](llvm::raw_ostream &os) {
        os << object.getObject().getValue();
      }, loc);
    }
    if (failed(progress.step("compiling GPU kernels and launches", [&] {
          return runPipeline(module, options, buildGPUPipeline);
        })))
      return failure();
    if (mlirOut && options.stage != MLIRStage::LLVM)
      return emitMLIR();
  } else {
    if (options.emit == EmitKind::PTX)
      return emitError(loc) << "--emit=ptx needs a GPU target (--target=nvptx)";
  if (failed(progress.step("lowering to linalg", [&] {
        return runPipeline(module, options, buildLinalgPipeline, entry);
      })))
    return failure();
  if (mlirOut && options.stage == MLIRStage::Linalg)
    return emitMLIR();
  if (failed(progress.step("bufferizing", [&] {
        return runPipeline(module, options, buildBufferizePipeline, entry);
      })))
    return failure();
  if (mlirOut && options.stage == MLIRStage::Bufferized)
    return emitMLIR();
  }
  if (failed(progress.step("lowering to the LLVM dialect", [&] {
        return runPipeline(module, options, buildLLVMPipeline, entry);
      })))
    return failure();
  if (mlirOut)
    return emitMLIR();
  // A shared object takes its weights from a data file (WeightData.h); the
  // other phases keep them in the module.
  if (options.emit == EmitKind::SharedObject &&
      failed(progress.step("writing the weight data", [&] {
        return link.outlineWeights(module, "__bitnet_weights_", loc,
                                   options.verbose);
      })))
    return failure();

  llvm::Expected<std::unique_ptr<llvm::TargetMachine>> machine =
      createTargetMachine(options.target);
  if (!machine)
    return reportError(loc, machine.takeError());
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule;
  if (failed(progress.step("optimising LLVM IR", [&]() -> LogicalResult {
        auto translated = translateAndOptimize(module, llvmContext, **machine,
                                               options.target.optLevel);
        if (!translated)
          return reportError(loc, translated.takeError());
        llvmModule = std::move(*translated);
        return success();
      })))
    return failure();
  if (options.emit == EmitKind::LLVM)
    return writeText(outputPath,
                     [&](llvm::raw_ostream &os) { llvmModule->print(os, nullptr); },
                     loc);

  if (options.emit == EmitKind::Object) {
    return progress.step("emitting the object file", [&]() -> LogicalResult {
      std::string message;
      std::unique_ptr<llvm::ToolOutputFile> out =
          openOutputFile(outputPath, &message);
      if (!out)
        return emitError(loc) << message;
      if (llvm::Error error = emitObject(*llvmModule, **machine, out->os()))
        return reportError(loc, std::move(error));
      out->keep();
      return success();
    });
  }

  // A shared object: the objects go to temporary files, then the linker.
  TemporaryObject object;
  if (failed(object.create(loc)) ||
      failed(progress.step("emitting the object file", [&] {
        return writeObject(*llvmModule, **machine, object.path, loc);
      })))
    return failure();
  std::vector<std::string> objects{object.path.str().str()};
  objects.insert(objects.end(), link.paths.begin(), link.paths.end());
  return progress.step("linking " + outputPath.str(), [&]() -> LogicalResult {
    if (llvm::Error error =
            linkSharedObject(objects, outputPath,
                             resolveTarget(options.target), options.linker))
      return reportError(loc, std::move(error));
    return success();
  });
}

//===----------------------------------------------------------------------===//
// Diagnostics
//===----------------------------------------------------------------------===//

CompilerDiagnosticHandler::CompilerDiagnosticHandler(llvm::SourceMgr &mgr,
                                                     MLIRContext *context)
    : CompilerDiagnosticHandler(mgr, context, llvm::errs()) {}

CompilerDiagnosticHandler::CompilerDiagnosticHandler(llvm::SourceMgr &mgr,
                                                     MLIRContext *context,
                                                     raw_ostream &os,
                                                     unsigned maxColumns)
    : SourceMgrDiagnosticHandler(mgr, context, os), maxColumns(maxColumns) {
  setHandler([this](Diagnostic &diag) {
    bool excerpt = longLine(diag.getLocation()).has_value();
    for (Diagnostic &note : diag.getNotes())
      excerpt |= longLine(note.getLocation()).has_value();
    if (!excerpt) {
      emitDiagnostic(diag);
      return success();
    }
    emitWithExcerpt(diag.getLocation(), diag.str(), diag.getSeverity());
    for (Diagnostic &note : diag.getNotes())
      emitWithExcerpt(note.getLocation(), note.str(), note.getSeverity());
    return success();
  });
}

std::optional<StringRef> CompilerDiagnosticHandler::longLine(Location loc) {
  // As SourceMgrDiagnosticHandler: no source line for an unknown line or
  // column (an ONNX node's location is its index in the binary file).
  auto fileLoc = loc->findInstanceOf<FileLineColLoc>();
  if (!fileLoc || fileLoc.getLine() == 0 || fileLoc.getColumn() == 0)
    return std::nullopt;
  const llvm::MemoryBuffer *buffer = getBufferForFile(fileLoc.getFilename());
  if (!buffer)
    return std::nullopt;
  StringRef rest = buffer->getBuffer();
  for (unsigned line = 1; line < fileLoc.getLine() && !rest.empty(); ++line)
    rest = rest.split('\n').second;
  StringRef text = rest.split('\n').first.rtrim('\r');
  if (text.size() <= maxColumns)
    return std::nullopt;
  return text;
}

void CompilerDiagnosticHandler::emitWithExcerpt(Location loc,
                                                const Twine &message,
                                                DiagnosticSeverity severity) {
  std::optional<StringRef> line = longLine(loc);
  emitDiagnostic(loc, message, severity, /*displaySourceLine=*/false);
  if (!line)
    return;
  // maxColumns characters of the line around the column, marked "..." where
  // cut, and the caret under the column.
  size_t column = loc->findInstanceOf<FileLineColLoc>().getColumn();
  column = std::min<size_t>(column ? column - 1 : 0, line->size());
  size_t half = maxColumns / 2;
  size_t begin = column > half ? column - half : 0;
  size_t end = std::min(line->size(), begin + maxColumns);
  std::string prefix = begin ? "..." : "";
  os << prefix << line->slice(begin, end) << (end < line->size() ? "..." : "")
     << "\n"
     << std::string(prefix.size() + column - begin, ' ') << "^ (column "
     << column + 1 << " of a line of " << line->size() << " characters)\n";
}
