//===- CPUTarget.cpp - Models compiled for a CPU -----------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The CPU target: kernels chosen from the architecture's families
// (Architecture.h), the reference pipelines with those kernels, builds for
// other CPUs in the same shared object (#bitnet.variant), and machine code
// through LLVM's TargetMachine (CodeGen.h) with the weights outside the LLVM
// module (WeightData.h).
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/CPU/Architecture.h"
#include "bitnet/Target/CPU/CodeGen.h"
#include "bitnet/Target/CPU/WeightData.h"
#include "bitnet/Target/InitAllTargets.h"
#include "bitnet/Target/Target.h"
#include "bitnet/Transforms/ModelABI.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Support/FileUtilities.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::bitnet;

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static LogicalResult reportError(Location loc, llvm::Error error) {
  InFlightDiagnostic diag = emitError(loc);
  diag << llvm::toString(std::move(error));
  return diag;
}

/// The kernels `options.kernels` selects for the CPU `target`.
static llvm::Expected<KernelSelection>
selectKernels(StringRef kernels, const ResolvedTarget &target) {
  if (kernels == "reference")
    return KernelSelection{};
  const CPUArchitecture *arch =
      lookupCPUArchitecture(llvm::Triple(target.triple));
  SmallVector<StringRef> features;
  std::string checkable = getCheckableFeatures(target);
  StringRef(checkable).split(features, ',');
  auto has = [&](ArrayRef<llvm::StringLiteral> needed) {
    return llvm::all_of(needed, [&](StringRef f) {
      return llvm::is_contained(features, f);
    });
  };
  if (kernels == "auto") {
    for (const CPUKernelChoice &choice :
         arch ? arch->kernels : ArrayRef<CPUKernelChoice>()) {
      if (!has(choice.needs))
        continue;
      KernelSelection selection = choice.selection;
      selection.family = choice.autoFamily;
      return selection;
    }
    return KernelSelection{};
  }
  // A family of any architecture: one of another is an error that names
  // what it needs.
  SmallVector<StringRef> names{"auto", "reference"};
  for (const CPUArchitecture *other : getCPUArchitectures())
    for (const CPUKernelChoice &choice : other->kernels) {
      names.push_back(choice.name);
      if (kernels != choice.name)
        continue;
      if (other != arch || !has(choice.needs)) {
        SmallVector<StringRef> needs(choice.needs.begin(),
                                     choice.needs.end());
        return makeError("--kernels=" + kernels + " needs a target with " +
                         llvm::join(needs, ", ") + " (this one is " +
                         target.triple + " " + target.cpu + ")");
      }
      return choice.selection;
    }
  std::string expected = llvm::join(ArrayRef(names).drop_back(), ", ") +
                         " or " + names.back().str();
  return makeError("unknown kernels '" + kernels + "' (expected " + expected +
                   ")");
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

/// Moves the large constants of `module` (lowered to the LLVM dialect) to a
/// data file and an assembly file to link (WeightData.h); their symbols
/// start with `prefix`.
static LogicalResult outlineWeights(ModuleOp module, StringRef prefix,
                                    Compilation &compilation,
                                    bool verbose = false,
                                    SharedWeights *shared = nullptr) {
  Location loc = module.getLoc();
  FailureOr<std::string> data = compilation.createTemporaryFile(loc, "bin");
  if (failed(data))
    return failure();
  FailureOr<std::string> assembly = compilation.createTemporaryFile(loc, "s");
  if (failed(assembly))
    return failure();
  llvm::Expected<OutlinedWeights> outlined =
      outlineWeightData(module, prefix, *data, *assembly, 64 * 1024, shared);
  if (!outlined)
    return reportError(loc, outlined.takeError());
  if (verbose) {
    llvm::errs() << " " << outlined->globals << " constants, "
                 << llvm::format("%.1f", outlined->bytes / 1048576.0)
                 << " MiB";
    if (outlined->sharedGlobals)
      llvm::errs() << " (" << outlined->sharedGlobals << " of them, "
                   << llvm::format("%.1f", outlined->sharedBytes / 1048576.0)
                   << " MiB, shared with the other entries)";
  }
  compilation.linkInputs.push_back(*assembly);
  return success();
}

namespace {
class CPUTargetBackend : public TargetBackend {
public:
  StringRef getName() const override { return "cpu"; }

  llvm::Error validate(const CompileOptions &options) const override {
    if (options.gpuEmulation)
      return makeError("--gpu-emulation needs --target=nvptx");
    if (options.gpuGemvRows)
      return makeError("--gpu-gemv-rows needs --target=nvptx");
    if (options.emit == EmitKind::PTX)
      return makeError("--emit=ptx needs a GPU target (--target=nvptx)");
    if (llvm::Error error = createTargetMachine(options.target).takeError())
      return error;
    return selectKernels(options.kernels, resolveTarget(options.target))
        .takeError();
  }

  TargetAttr getTargetAttr(MLIRContext *context,
                           const CompileOptions &options) const override {
    ResolvedTarget resolved = resolveTarget(options.target);
    return TargetAttr::get(context, "cpu", resolved.triple, resolved.cpu,
                           getCheckableFeatures(resolved));
  }

  LogicalResult lower(ModuleOp module, const CompileOptions &options,
                      std::optional<MLIRStage> stopAfter,
                      Compilation &compilation) const override {
    // The other entries first: the main descriptor lists them, and the
    // main build refers to the weights they wrote.
    SmallVector<Attribute> entries;
    for (const ModelEntry &entry : options.entries) {
      FailureOr<DictionaryAttr> attr =
          compileEntry(module, options, entry, compilation);
      if (failed(attr))
        return failure();
      entries.push_back(*attr);
    }
    if (!entries.empty())
      module->setAttr(abi::kEntriesAttrName,
                      ArrayAttr::get(module.getContext(), entries));
    // Variant builds first: the baseline's descriptor lists them.
    SmallVector<Attribute> variants;
    for (const std::string &cpu : options.variants) {
      FailureOr<VariantAttr> variant =
          compileVariant(module, options, cpu, compilation);
      if (failed(variant))
        return failure();
      variants.push_back(*variant);
    }
    if (!variants.empty())
      module->setAttr(kVariantsAttrName,
                      ArrayAttr::get(module.getContext(), variants));
    return lowerBuild(module, options, stopAfter, compilation.timer);
  }

  LogicalResult serialize(ModuleOp module, const CompileOptions &options,
                          StringRef outputPath,
                          Compilation &compilation) const override {
    Location loc = module.getLoc();
    StageTimer &timer = compilation.timer;
    // A shared object takes its weights from a data file (WeightData.h);
    // the other phases keep them in the module.
    if (options.emit == EmitKind::SharedObject &&
        failed(timer.step("writing the weight data", [&] {
          return outlineWeights(module, "__bitnet_weights_", compilation,
                                timer.isEnabled(),
                                &compilation.sharedWeights);
        })))
      return failure();
    llvm::Expected<std::unique_ptr<llvm::TargetMachine>> machine =
        createTargetMachine(options.target);
    if (!machine)
      return reportError(loc, machine.takeError());
    llvm::LLVMContext llvmContext;
    std::unique_ptr<llvm::Module> llvmModule;
    if (failed(timer.step("optimising LLVM IR", [&]() -> LogicalResult {
          auto translated = translateAndOptimize(module, llvmContext, **machine,
                                                 options.target.optLevel);
          if (!translated)
            return reportError(loc, translated.takeError());
          llvmModule = std::move(*translated);
          return success();
        })))
      return failure();
    if (options.emit == EmitKind::LLVM) {
      std::string message;
      std::unique_ptr<llvm::ToolOutputFile> out =
          openOutputFile(outputPath, &message);
      if (!out)
        return emitError(loc) << message;
      llvmModule->print(out->os(), nullptr);
      out->keep();
      return success();
    }
    if (options.emit == EmitKind::Object) {
      return timer.step("emitting the object file", [&]() -> LogicalResult {
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
    FailureOr<std::string> object = compilation.createTemporaryFile(loc, "o");
    if (failed(object) ||
        failed(timer.step("emitting the object file", [&] {
          return writeObject(*llvmModule, **machine, *object, loc);
        })))
      return failure();
    std::vector<std::string> objects{*object};
    objects.insert(objects.end(), compilation.linkInputs.begin(),
                   compilation.linkInputs.end());
    return timer.step("linking " + outputPath, [&]() -> LogicalResult {
      return compilation.writeAtomically(
          loc, outputPath, [&](StringRef path) -> LogicalResult {
            if (llvm::Error error =
                    linkSharedObject(objects, path,
                                     resolveTarget(options.target),
                                     options.linker))
              return reportError(loc, std::move(error));
            if (llvm::Error error = appendChecksumTrailer(path))
              return reportError(loc, std::move(error));
            return success();
          });
    });
  }

private:
  /// The reference pipelines with this target's kernels.
  static LogicalResult
  lowerBuild(ModuleOp module, const CompileOptions &options,
             std::optional<MLIRStage> stopAfter, StageTimer &timer,
             llvm::function_ref<void(PipelineOptions &)> entry = {},
             StringRef suffix = "") {
    llvm::Expected<KernelSelection> kernels =
        selectKernels(options.kernels, resolveTarget(options.target));
    if (!kernels)
      return reportError(module.getLoc(), kernels.takeError());
    auto configure = [&](PipelineOptions &pipeline) {
      pipeline.cpuKernels = kernels->isa;
      pipeline.cpuKernelFamily = kernels->family;
      pipeline.cpuLayoutTokens = options.layoutTokens;
      if (!options.tunedKernels.empty())
        pipeline.cpuTunedKernels = ArrayRef<std::string>(options.tunedKernels);
      if (entry)
        entry(pipeline);
    };
    struct Stage {
      MLIRStage stage;
      StringRef name;
      void (*build)(OpPassManager &, const PipelineOptions &);
    };
    const Stage stages[] = {
        {MLIRStage::Linalg, "lowering to linalg", buildLinalgPipeline},
        {MLIRStage::Bufferized, "bufferizing", buildBufferizePipeline},
        {MLIRStage::LLVM, "lowering to the LLVM dialect", buildLLVMPipeline},
    };
    for (const Stage &stage : stages) {
      if (failed(timer.step(stage.name + suffix, [&] {
            return runPipeline(module, options, stage.build, configure);
          })))
        return failure();
      if (stopAfter == stage.stage)
        return success();
    }
    return success();
  }

  /// Writes the object of `module`, lowered to the LLVM dialect, to a
  /// temporary file linked into the shared object.
  static LogicalResult emitLinkedObject(ModuleOp module,
                                        const CompileOptions &options,
                                        Compilation &compilation,
                                        const Twine &stage) {
    Location loc = module.getLoc();
    llvm::Expected<std::unique_ptr<llvm::TargetMachine>> machine =
        createTargetMachine(options.target);
    if (!machine)
      return reportError(loc, machine.takeError());
    llvm::LLVMContext llvmContext;
    return compilation.timer.step(stage, [&]() -> LogicalResult {
      auto translated = translateAndOptimize(module, llvmContext, **machine,
                                             options.target.optLevel);
      if (!translated)
        return reportError(loc, translated.takeError());
      FailureOr<std::string> object = compilation.createTemporaryFile(loc, "o");
      if (failed(object))
        return failure();
      compilation.linkInputs.push_back(*object);
      return writeObject(**translated, **machine, *object, loc);
    });
  }

  /// Compiles another entry of the model (read again with its shapes) into
  /// an object with its own descriptor and run function; its weights are
  /// written once for all the entries. Returns what the main descriptor
  /// lists of it (abi::kEntriesAttrName).
  FailureOr<DictionaryAttr> compileEntry(ModuleOp module,
                                         const CompileOptions &base,
                                         const ModelEntry &entry,
                                         Compilation &compilation) const {
    MLIRContext *context = module.getContext();
    OwningOpRef<ModuleOp> copy = entry.load();
    if (!copy)
      return failure();
    CompileOptions options = base;
    options.lastTokenLogits = entry.lastTokenLogits;
    options.entries.clear();
    options.variants.clear();
    (*copy)->setAttr(kTargetAttrName, getTargetAttr(context, options));
    std::string runSymbol = "bitnet_model_run__" + entry.name;
    std::string infoSymbol = "bitnet_model_info__" + entry.name;
    std::string suffix = " (entry " + entry.name + ")";
    auto symbols = [&](PipelineOptions &pipeline) {
      pipeline.runSymbol = runSymbol;
      pipeline.infoSymbol = infoSymbol;
    };
    StageTimer &timer = compilation.timer;
    if (failed(lowerBuild(*copy, options, std::nullopt, timer, symbols,
                          suffix)))
      return failure();
    int64_t stack = staticStackBytes(*copy);
    if (failed(timer.step("writing the weight data" + suffix, [&] {
          return outlineWeights(*copy, "__bitnet_" + entry.name + "_weights_",
                                compilation, timer.isEnabled(),
                                &compilation.sharedWeights);
        })))
      return failure();
    if (failed(emitLinkedObject(*copy, options, compilation,
                                "emitting code" + suffix)))
      return failure();
    Builder b(context);
    return b.getDictionaryAttr(
        {b.getNamedAttr("name", b.getStringAttr(entry.name)),
         b.getNamedAttr("info", FlatSymbolRefAttr::get(context, infoSymbol)),
         b.getNamedAttr("run", FlatSymbolRefAttr::get(context, runSymbol)),
         b.getNamedAttr("stack_bytes", b.getI64IntegerAttr(stack))});
  }

  /// Compiles a copy of `module` for the CPU `cpu` into an object whose
  /// entry is a variant's run function.
  FailureOr<VariantAttr> compileVariant(ModuleOp module,
                                        const CompileOptions &base,
                                        StringRef cpu,
                                        Compilation &compilation) const {
    Location loc = module.getLoc();
    CompileOptions options = base;
    options.target.cpu = cpu == "native" ? "" : cpu.str();
    // What was timed here says nothing of another CPU.
    if (cpu != "native")
      options.tunedKernels.clear();
    ResolvedTarget target = resolveTarget(options.target);
    std::string runSymbol = "bitnet_model_run__";
    for (char c : target.cpu)
      runSymbol += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';

    OwningOpRef<ModuleOp> copy(cast<ModuleOp>(module->clone()));
    (*copy)->setAttr(kTargetAttrName,
                     getTargetAttr(module.getContext(), options));
    StageTimer &timer = compilation.timer;
    std::string suffix = " for " + target.cpu;
    // The workspace each build needs is its own: read it before the entry
    // function becomes private.
    int64_t bytes = 0, alignment = 1;
    auto entry = [&](PipelineOptions &pipeline) {
      pipeline.runSymbol = runSymbol;
      pipeline.emitInfo = false;
    };
    if (failed(lowerBuild(*copy, options, MLIRStage::Bufferized, timer, entry,
                          suffix)))
      return failure();
    func::FuncOp func = lookupEntryFunction(*copy, options.entry);
    if (!func)
      return failure();
    if (auto attr = func->getAttrOfType<IntegerAttr>("bitnet.workspace_bytes"))
      bytes = attr.getInt();
    if (auto attr =
            func->getAttrOfType<IntegerAttr>("bitnet.workspace_alignment"))
      alignment = attr.getInt();
    if (failed(timer.step("lowering to the LLVM dialect" + suffix, [&] {
          return runPipeline(*copy, options, buildLLVMPipeline, entry);
        })))
      return failure();
    int64_t stack = staticStackBytes(*copy);
    if (failed(outlineWeights(*copy, runSymbol + "_weights_", compilation)))
      return failure();
    if (failed(emitLinkedObject(*copy, options, compilation,
                                "emitting code" + suffix)))
      return failure();
    return VariantAttr::get(
        module.getContext(), target.cpu,
        FlatSymbolRefAttr::get(module.getContext(), runSymbol), bytes,
        alignment, getCheckableFeatures(target), stack);
  }
};
} // namespace

void mlir::bitnet::registerCPUTarget() {
  registerTarget(std::make_unique<CPUTargetBackend>());
}
