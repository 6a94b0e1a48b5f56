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
#include "bitnet/Target/InitAllTargets.h"
#include "bitnet/Target/Target.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Triple.h"

#include <chrono>
#include <deque>
#include <limits>
#include <optional>

using namespace mlir;
using namespace mlir::bitnet;

void mlir::bitnet::setTarget(CompileOptions &options, StringRef target) {
  if (target == "nvptx" || target == "nvptx64" || target == "cuda") {
    options.backend = "nvptx";
    options.target.triple = "";
    return;
  }
  options.backend = "cpu";
  options.target.triple = target.str();
}

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Error mlir::bitnet::checkOutputPath(StringRef output) {
  if (output == "-")
    return llvm::Error::success();
  if (llvm::sys::fs::is_directory(output))
    return makeError("cannot write '" + output + "': it is a directory");
  StringRef dir = llvm::sys::path::parent_path(output);
  if (!dir.empty() && !llvm::sys::fs::is_directory(dir))
    return makeError("cannot write '" + output + "': no directory '" + dir +
                     "'");
  if (dir.empty())
    dir = ".";
  if (llvm::sys::fs::access(dir, llvm::sys::fs::AccessMode::Write))
    return makeError("cannot write '" + output + "': the directory '" + dir +
                     "' is not writable");
  return llvm::Error::success();
}

llvm::Error mlir::bitnet::validateCompileOptions(const CompileOptions &options) {
  registerAllTargets();
  if (options.stage != MLIRStage::Input && options.emit != EmitKind::MLIR)
    return makeError("--mlir-stage needs --emit=mlir");
  if (options.target.optLevel > 3)
    return makeError("--opt-level must be 0 to 3, got " +
                     Twine(options.target.optLevel));
  if (!options.variants.empty() && options.emit != EmitKind::SharedObject)
    return makeError("variant builds need --emit=so");
  if (!options.entries.empty()) {
    if (options.emit != EmitKind::SharedObject)
      return makeError("a model's other entries (--prefill-tokens) need "
                       "--emit=so");
    if (options.backend != "cpu")
      return makeError("a model's other entries (--prefill-tokens) need a "
                       "CPU target");
    if (!options.variants.empty())
      return makeError("a model's other entries (--prefill-tokens) and "
                       "builds for other CPUs (--variants) do not combine");
    llvm::StringSet<> names;
    for (const ModelEntry &entry : options.entries)
      if (entry.name.empty() || !entry.load ||
          !llvm::all_of(entry.name, [](char c) {
            return llvm::isDigit(c) || llvm::isLower(c) || c == '_';
          }) ||
          !names.insert(entry.name).second)
        return makeError("entry '" + entry.name +
                         "': an entry needs a name of its own (lower-case "
                         "letters, digits, '_') and a way to read it");
  }
  if (options.layoutTokens < 0)
    return makeError("layout tokens must be >= 0");
  if (options.emit == EmitKind::Tokenizer)
    return llvm::Error::success(); // no code is generated
  const TargetBackend *target = lookupTarget(options.backend);
  if (!target)
    return makeError("unknown target '" + options.backend + "' (expected " +
                     llvm::join(getRegisteredTargetNames(), ", ") + ")");
  return target->validate(options);
}

void mlir::bitnet::prepareContext(MLIRContext &context) {
  DialectRegistry registry;
  registerDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
}

bool mlir::bitnet::isCheckpointPath(StringRef path) {
  return path.ends_with(".gguf") ||
         (!path.ends_with(".onnx") && llvm::sys::fs::is_directory(path));
}

static OwningOpRef<ModuleOp>
readModel(StringRef path, MLIRContext &context, llvm::SourceMgr &sourceMgr,
          ArrayRef<std::string> inputShapes, bool strictFloat, bool verbose,
          DecoderShape decoder) {
  // A FIFO or a device would block the read or never end; only files and
  // checkpoint directories are models.
  llvm::sys::fs::file_status status;
  if (path != "-" && !llvm::sys::fs::status(path, status) &&
      status.type() != llvm::sys::fs::file_type::regular_file &&
      status.type() != llvm::sys::fs::file_type::directory_file) {
    emitError(UnknownLoc::get(&context))
        << "cannot read '" << path << "': not a regular file";
    return {};
  }
  bool isGGUF = path.ends_with(".gguf");
  bool isCheckpoint = isCheckpointPath(path);
  if (!isCheckpoint && (decoder.sequences || decoder.context)) {
    emitError(UnknownLoc::get(&context))
        << (decoder.sequences ? "--max-sequences" : "--max-context")
        << " applies to checkpoints (a GGUF file or a Hugging Face "
           "directory) only";
    return {};
  }
  if (path.ends_with(".onnx")) {
    ONNXImportOptions options;
    options.strictFloat = strictFloat;
    options.explainBitLinear = verbose;
    for (const std::string &spec : inputShapes) {
      std::string error = addInputShape(spec, options);
      if (!error.empty()) {
        emitError(UnknownLoc::get(&context)) << error;
        return {};
      }
    }
    return importONNXFile(path, context, options);
  }
  if (isCheckpoint) {
    CheckpointImportOptions options;
    options.verbose = verbose;
    options.sequences = decoder.sequences;
    options.cacheCapacity = decoder.context;
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
                        bool strictFloat, bool verbose,
                        DecoderShape decoder) {
  auto start = std::chrono::steady_clock::now();
  if (verbose)
    llvm::errs() << "bitnet-compile: reading " << path << " ...\n";
  ProgressLine *progress = verbose ? nullptr : getProgressLine();
  if (progress)
    progress->begin("reading " + path);
  OwningOpRef<ModuleOp> module = readModel(
      path, context, sourceMgr, inputShapes, strictFloat, verbose, decoder);
  if (progress)
    progress->end(static_cast<bool>(module));
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

/// Bytes of a tensor of `type` (a ternary matrix: its storage), if it has a
/// static shape and the count fits in 64 bits.
static std::optional<int64_t> tensorBytes(Type type) {
  if (auto ternary = dyn_cast<TernaryType>(type))
    type = ternary.getStorageType();
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape() ||
      !tensor.getElementType().isIntOrIndexOrFloat())
    return std::nullopt;
  int64_t bytes = llvm::divideCeil(
      tensor.getElementType().isIndex()
          ? 64
          : tensor.getElementType().getIntOrFloatBitWidth(),
      8);
  for (int64_t dim : tensor.getShape())
    if (llvm::MulOverflow(bytes, dim, bytes))
      return std::numeric_limits<int64_t>::max();
  return bytes;
}

/// Refuses a model with a tensor over `limit` bytes, at the op (or argument)
/// that holds it, before anything folds or allocates it: a few hundred bytes
/// of text can declare a splat of a terabyte.
static LogicalResult checkTensorSizes(ModuleOp module, int64_t limit) {
  auto check = [&](Type type, Location loc, const Twine &what) -> LogicalResult {
    std::optional<int64_t> bytes = tensorBytes(type);
    if (!bytes || *bytes <= limit)
      return success();
    return emitError(loc) << what << " is a " << type << " of " << *bytes
                          << " bytes, over the limit of " << limit
                          << " bytes (--max-tensor-bytes)";
  };
  WalkResult result = module.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (auto func = dyn_cast<FunctionOpInterface>(op))
      for (auto [i, type] : llvm::enumerate(func.getArgumentTypes()))
        if (failed(check(type, op->getLoc(),
                         "argument #" + Twine(i) + " of @" +
                             func.getName())))
          return WalkResult::interrupt();
    for (OpResult r : op->getResults())
      if (failed(check(r.getType(), op->getLoc(),
                       "the result of '" + op->getName().getStringRef() +
                           "'")))
        return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

LogicalResult mlir::bitnet::compileModule(ModuleOp module,
                                          const CompileOptions &options,
                                          StringRef outputPath) {
  Location loc = module.getLoc();
  if (llvm::Error error = validateCompileOptions(options))
    return emitError(loc) << llvm::toString(std::move(error));
  if (llvm::Error error = checkOutputPath(outputPath))
    return emitError(loc) << llvm::toString(std::move(error));
  if (failed(checkTensorSizes(module, options.maxTensorBytes)))
    return failure();
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
  const TargetBackend *target = lookupTarget(options.backend);
  module->setAttr(kTargetAttrName,
                  target->getTargetAttr(module.getContext(), options));

  // The input stage: canonicalised, so folds (ternarisation, packing of
  // constants) are visible.
  if (mlirOut && options.stage == MLIRStage::Input) {
    PassManager pm(module->getName());
    pm.addPass(createCanonicalizerPass());
    if (failed(pm.run(module)))
      return failure();
    return emitMLIR();
  }
  Compilation compilation(options.verbose);
  std::optional<MLIRStage> stopAfter;
  if (mlirOut)
    stopAfter = options.stage;
  if (failed(target->lower(module, options, stopAfter, compilation)))
    return failure();
  if (mlirOut)
    return emitMLIR();
  return target->serialize(module, options, outputPath, compilation);
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
