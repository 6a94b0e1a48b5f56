//===- CodeGen.cpp - Machine code for CPU targets ---------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/CPU/CodeGen.h"

#include "bitnet/Target/CPU/Architecture.h"
#include "bitnet/Transforms/ModelABI.h"

#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::bitnet;

static llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static void initializeTargets() {
  static bool done = [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
    return true;
  }();
  (void)done;
}

ResolvedTarget mlir::bitnet::resolveTarget(const CPUTarget &target) {
  std::string host = llvm::sys::getProcessTriple();
  ResolvedTarget resolved;
  resolved.triple = target.triple.empty()
                        ? host
                        : llvm::Triple::normalize(target.triple);
  resolved.isHost = llvm::Triple(resolved.triple).getArch() ==
                        llvm::Triple(host).getArch() &&
                    llvm::Triple(resolved.triple).getOS() ==
                        llvm::Triple(host).getOS();
  bool hostCpu = resolved.isHost && (target.cpu.empty() || target.cpu == "native");
  resolved.cpu = hostCpu ? llvm::sys::getHostCPUName().str()
                         : (target.cpu.empty() ? "generic" : target.cpu);
  SmallVector<std::string> features;
  if (hostCpu)
    for (const auto &feature : llvm::sys::getHostCPUFeatures())
      features.push_back((feature.second ? "+" : "-") + feature.first().str());
  if (!target.features.empty())
    features.push_back(target.features);
  resolved.features = llvm::join(features, ",");
  return resolved;
}

std::string mlir::bitnet::getCheckableFeatures(const ResolvedTarget &target) {
  llvm::Triple triple(target.triple);
  const CPUArchitecture *arch = lookupCPUArchitecture(triple);
  if (!arch)
    return "";
  initializeTargets();
  std::string error;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return "";
  // The CPU's own features with the explicit ones applied on top.
  std::unique_ptr<llvm::MCSubtargetInfo> sti(llvmTarget->createMCSubtargetInfo(
      triple, target.cpu, target.features));
  if (!sti)
    return "";
  SmallVector<llvm::StringRef> needed;
  for (llvm::StringRef feature : arch->checkableFeatures)
    if (sti->checkFeatures(("+" + feature).str()))
      needed.push_back(feature);
  return llvm::join(needed, ",");
}

/// Features that decide the mode or the calling convention of the code
/// rather than which instructions it may use: LLVM cannot generate the
/// model's code with them changed and ends the process ("64-bit code
/// requested on a subtarget that doesn't support it", or a crash in
/// instruction selection). Returns the value the feature must keep.
static std::optional<bool> getFixedFeature(const llvm::Triple &triple,
                                           llvm::StringRef name) {
  if (triple.getArch() == llvm::Triple::x86_64)
    return llvm::StringSwitch<std::optional<bool>>(name)
        .Cases({"64bit", "64bit-mode"}, true)
        .Cases({"16bit-mode", "32bit-mode", "soft-float", "x32"}, false)
        .Default(std::nullopt);
  return std::nullopt;
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
mlir::bitnet::createTargetMachine(const CPUTarget &target) {
  initializeTargets();
  if (target.optLevel > 3)
    return makeError("optimisation level must be 0 to 3, got " +
                     llvm::Twine(target.optLevel));
  ResolvedTarget resolved = resolveTarget(target);
  llvm::Triple triple(resolved.triple);
  std::string error;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return makeError("unknown target '" + resolved.triple + "': " + error);
  if (!target.cpu.empty() && target.cpu != "generic" &&
      target.cpu != "native") {
    // Unknown CPUs only warn inside LLVM (and then fail fatally on the
    // host's triple); check them here.
    std::unique_ptr<llvm::MCSubtargetInfo> sti(
        llvmTarget->createMCSubtargetInfo(triple, "", ""));
    if (sti && !sti->isCPUStringValid(resolved.cpu))
      return makeError("unknown CPU '" + resolved.cpu + "' for " +
                       resolved.triple);
  }
  if (!resolved.features.empty()) {
    // LLVM ignores an unknown feature with a warning and builds without it;
    // the user asked for something this target does not have.
    std::unique_ptr<llvm::MCSubtargetInfo> sti(
        llvmTarget->createMCSubtargetInfo(triple, "", ""));
    llvm::SmallVector<llvm::StringRef> features;
    llvm::StringRef(resolved.features).split(features, ',', -1, false);
    for (llvm::StringRef feature : features) {
      llvm::StringRef name = feature.ltrim("+-");
      if (!feature.starts_with("+") && !feature.starts_with("-"))
        return makeError("feature '" + feature +
                         "' must start with + (enable) or - (disable)");
      bool known = llvm::any_of(
          sti ? sti->getAllProcessorFeatures()
              : llvm::ArrayRef<llvm::SubtargetFeatureKV>(),
          [&](const llvm::SubtargetFeatureKV &kv) {
            return name == kv.Key;
          });
      if (sti && !known)
        return makeError("unknown CPU feature '" + name + "' for " +
                         resolved.triple);
      if (std::optional<bool> fixed = getFixedFeature(triple, name);
          fixed && *fixed != feature.starts_with("+"))
        return makeError("CPU feature '" + name + "' cannot be " +
                         (*fixed ? "disabled" : "enabled") + " for " +
                         resolved.triple +
                         ": the generated code and its calling convention "
                         "depend on it");
    }
  }
  llvm::TargetOptions options;
  auto level = static_cast<llvm::CodeGenOptLevel>(target.optLevel);
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, resolved.cpu, resolved.features, options, llvm::Reloc::PIC_,
      std::nullopt, level));
  if (!machine)
    return makeError("cannot create a target machine for " + resolved.triple);
  return machine;
}

/// Keeps only the model ABI's symbols visible outside the shared object, so
/// that LLVM may inline and drop everything else and two models loaded into
/// one process never clash.
static void internalize(llvm::Module &module) {
  // bitnet_model_run__<cpu> are the entries of variant builds, which the
  // baseline's descriptor refers to from another object, as it does to
  // bitnet_model_{info,run}__<entry> of a model's other entries; NAME__bitnet_emu
  // and NAME__bitnet_emu_info are the host builds of GPU kernels that the
  // CUDA driver emulator looks up (bitnet_rt/gpu_emulation.h).
  auto isAbi = [](llvm::StringRef name) {
    return name.starts_with("bitnet_model_info") ||
           name.starts_with("bitnet_model_run") ||
           name.ends_with("__bitnet_emu") || name.ends_with("__bitnet_emu_info");
  };
  for (llvm::Function &f : module)
    if (!f.isDeclaration() && !isAbi(f.getName()))
      f.setLinkage(llvm::GlobalValue::InternalLinkage);
  for (llvm::GlobalVariable &g : module.globals())
    if (!g.isDeclaration() && !isAbi(g.getName()))
      g.setLinkage(llvm::GlobalValue::InternalLinkage);
}

/// The model's thread-local variables (the execution context its kernels
/// read) use the initial-exec model: a load relative to the thread pointer
/// instead of a call to __tls_get_addr. Besides being faster, the call is
/// unsafe under LLVM's x86-64 code generation: it assumes the call preserves
/// xmm16-xmm31, which glibc's __tls_get_addr does not promise when it takes
/// its slow path (a thread whose TLS vector predates the dlopen updates it
/// with the AVX-512 memcpy and memset, which use those registers; an
/// interceptor such as AddressSanitizer's does so on every call), and a
/// value kept in xmm16 across it came back as 0xbebe... The cost: a model
/// takes its few bytes from the static TLS space glibc keeps for dlopen'ed
/// libraries.
static void useInitialExecTLS(llvm::Module &module) {
  for (llvm::GlobalVariable &g : module.globals())
    if (g.isThreadLocal())
      g.setThreadLocalMode(llvm::GlobalValue::InitialExecTLSModel);
}

llvm::Expected<std::unique_ptr<llvm::Module>>
mlir::bitnet::translateAndOptimize(ModuleOp module, llvm::LLVMContext &context,
                                   llvm::TargetMachine &machine,
                                   unsigned optLevel) {
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  module->getContext()->appendDialectRegistry(registry);

  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "bitnet_model");
  if (!llvmModule)
    return makeError("translation to LLVM IR failed");
  llvmModule->setTargetTriple(machine.getTargetTriple());
  llvmModule->setDataLayout(machine.createDataLayout());
  // Code for the chosen CPU, not LLVM's default for the triple.
  for (llvm::Function &f : *llvmModule) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", machine.getTargetCPU());
    if (!machine.getTargetFeatureString().empty())
      f.addFnAttr("target-features", machine.getTargetFeatureString());
  }
  internalize(*llvmModule);
  useInitialExecTLS(*llvmModule);

  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&machine);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  static const llvm::OptimizationLevel levels[] = {
      llvm::OptimizationLevel::O0, llvm::OptimizationLevel::O1,
      llvm::OptimizationLevel::O2, llvm::OptimizationLevel::O3};
  llvm::ModulePassManager mpm =
      optLevel == 0 ? pb.buildO0DefaultPipeline(levels[0])
                    : pb.buildPerModuleDefaultPipeline(levels[optLevel]);
  mpm.run(*llvmModule, mam);
  if (llvm::verifyModule(*llvmModule, &llvm::errs()))
    return makeError("the optimised LLVM IR does not verify");
  return llvmModule;
}

llvm::Error mlir::bitnet::emitObject(llvm::Module &module,
                                     llvm::TargetMachine &machine,
                                     llvm::raw_pwrite_stream &os) {
  llvm::legacy::PassManager pm;
  if (machine.addPassesToEmitFile(pm, os, nullptr,
                                  llvm::CodeGenFileType::ObjectFile))
    return makeError("the target cannot emit object files");
  pm.run(module);
  return llvm::Error::success();
}

llvm::Error mlir::bitnet::linkSharedObject(ArrayRef<std::string> objectPaths,
                                           llvm::StringRef outputPath,
                                           const ResolvedTarget &target,
                                           llvm::StringRef linker) {
  std::string driver = linker.str();
  std::vector<std::string> args;
  if (driver.empty())
    driver = target.isHost ? "cc" : "clang-22";
  llvm::ErrorOr<std::string> program = llvm::sys::findProgramByName(driver);
  if (!program && !target.isHost && linker.empty())
    program = llvm::sys::findProgramByName("clang", {"/usr/lib/llvm-22/bin"});
  if (!program)
    return makeError("cannot find the linker driver '" + driver +
                     "' (choose one with --linker)");
  args.push_back(*program);
  if (!target.isHost) {
    // No sysroot for foreign triples: link the object alone; the libm calls
    // it may make stay undefined and are resolved when it is loaded.
    args.insert(args.end(), {"--target=" + target.triple, "-fuse-ld=lld",
                             "-nostdlib"});
  }
  // LLVM's linker copies a model's hundreds of megabytes of weights several
  // times faster than GNU ld (measured: 2.7 s against 11.9 s for 1 GB); the
  // default driver uses it where it is installed.
  if (target.isHost && linker.empty() &&
      llvm::sys::findProgramByName("ld.lld"))
    args.push_back("-fuse-ld=lld");
  // Segments aligned to 2 MiB: the loader then maps the weights at addresses
  // congruent to their file offsets modulo a huge page, so that the kernel
  // can map the file's 2 MiB page-cache folios whole (bitnet_model_load
  // advises it). It pads addresses, not the file.
  args.insert(args.end(), {"-shared", "-Wl,-z,max-page-size=0x200000", "-o",
                           outputPath.str()});
  args.insert(args.end(), objectPaths.begin(), objectPaths.end());
  if (target.isHost)
    args.push_back("-lm");
  SmallVector<llvm::StringRef> argRefs(args.begin(), args.end());
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(*program, argRefs, std::nullopt, {}, 0, 0,
                                     &message);
  if (rc != 0)
    return makeError("linking failed (" +
                     (message.empty() ? "exit code " + llvm::Twine(rc)
                                      : llvm::Twine(message)) +
                     "): " + llvm::join(args, " "));
  return llvm::Error::success();
}

llvm::Error mlir::bitnet::appendChecksumTrailer(llvm::StringRef path) {
  uint64_t covered, checksum;
  {
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
        llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                    /*RequiresNullTerminator=*/false);
    if (!file)
      return makeError("cannot read '" + path + "': " +
                       file.getError().message());
    covered = (*file)->getBufferSize();
    checksum = llvm::xxHash64((*file)->getBuffer());
  }
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_Append);
  if (ec)
    return makeError("cannot write '" + path + "': " + ec.message());
  char fields[16];
  llvm::support::endian::write64le(fields, covered);
  llvm::support::endian::write64le(fields + 8, checksum);
  os << abi::kTrailerMagic << llvm::StringRef(fields, sizeof(fields));
  os.close();
  if (os.has_error())
    return makeError("cannot write '" + path + "': " + os.error().message());
  return llvm::Error::success();
}
