//===- Compile.cpp - compile() over the compiler library ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The same calls bitnet-compile makes (prepareContext, loadModel,
// compileModule), with every diagnostic captured into a string: a failure
// becomes bitnet_mlir.CompileError carrying the located diagnostics, and the
// diagnostics of a successful compilation (warnings, remarks) are returned so
// that Python can issue them as warnings. The GIL is released throughout.
//
// LLVM ends the process on a fatal error ("LLVM ERROR: ...") and on a crash
// of its own. Inside compile() both become CompileError instead: the work
// runs in a llvm::CrashRecoveryContext, and a fatal-error handler installed
// with the module jumps back out of it. Memory the interrupted compilation
// held is leaked, which is the price of keeping the interpreter alive.
//
//===----------------------------------------------------------------------===//

#include "Native.h"

#include "bitnet/Compiler/Compiler.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <pybind11/stl.h>

#include <csignal>
#include <cstdio>
#include <mutex>
#include <optional>

using namespace mlir;
using namespace mlir::bitnet;

namespace bitnet_python {

namespace {

struct CompileRequest {
  std::string path;
  std::optional<std::string> output; // none: return the text phase
  CompileOptions options;
};

struct CompileResult {
  bool ok = false;
  std::optional<std::string> text;
  std::string diagnostics; // everything the compiler reported
  std::string error;       // what failed, when !ok
};

/// Fills `result` as it goes, so that what was reported before a fatal
/// error survives it.
void runCompile(const CompileRequest &request, CompileResult &result) {
  llvm::raw_string_ostream diagnostics(result.diagnostics);

  MLIRContext context;
  prepareContext(context);
  // A failing pass would attach the whole module to its error as a note
  // ("see current operation: ..."): thousands of lines in an exception
  // message. The located error itself says what is wrong.
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  // Prints "file:line:col: error: message" with the source line (or an
  // excerpt of a long one) and a caret, as bitnet-compile does on stderr,
  // but into `diagnostics`.
  CompilerDiagnosticHandler handler(sourceMgr, &context, diagnostics);

  OwningOpRef<ModuleOp> module = loadModel(request.path, context, sourceMgr);
  if (!module) {
    result.error = "cannot load '" + request.path + "'";
    return;
  }

  std::string outputPath;
  llvm::SmallString<128> tempPath;
  std::optional<llvm::FileRemover> removeTemp;
  if (request.output) {
    outputPath = *request.output;
  } else {
    StringRef ext =
        getDefaultExtension(request.options.emit).drop_front(); // no dot
    if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
            "bitnet-python", ext, tempPath)) {
      result.error = "cannot create a temporary file: " + ec.message();
      return;
    }
    removeTemp.emplace(tempPath);
    outputPath = tempPath.str().str();
  }

  if (failed(compileModule(*module, request.options, outputPath))) {
    result.error = "cannot compile '" + request.path + "'";
    return;
  }

  if (!request.output) {
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
        llvm::MemoryBuffer::getFile(tempPath, /*IsText=*/true);
    if (!buffer) {
      result.error = "cannot read back " + tempPath.str().str() + ": " +
                     buffer.getError().message();
      return;
    }
    result.text = (*buffer)->getBuffer().str();
  }
  result.ok = true;
}

/// The reason of the last LLVM fatal error on this thread.
thread_local std::string fatalErrorReason;

void onFatalError(void *, const char *reason, bool) {
  if (llvm::CrashRecoveryContext *recovery =
          llvm::CrashRecoveryContext::GetCurrent()) {
    fatalErrorReason = reason ? reason : "";
    recovery->HandleExit(1); // back to RunSafely in protectedCompile
  }
  // Outside compile() (another thread of a compilation, or code of another
  // library in the process): what LLVM prints before it ends the process.
  std::fprintf(stderr, "LLVM ERROR: %s\n", reason ? reason : "");
}

/// Runs `work` with LLVM's fatal errors and crashes on this thread turned
/// into a returned message (about `what`) instead of the end of the process.
std::optional<std::string> runProtected(llvm::function_ref<void()> work,
                                        const std::string &what) {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::install_fatal_error_handler(onFatalError, nullptr);
    llvm::CrashRecoveryContext::Enable();
  });
  fatalErrorReason.clear();
  llvm::CrashRecoveryContext recovery;
  if (recovery.RunSafely(work))
    return std::nullopt;
  std::string error;
  if (!fatalErrorReason.empty()) {
    error = "LLVM failed while compiling " + what + ": " + fatalErrorReason;
  } else {
    // RetCode is the signal number plus 128 after a crash.
    int signal = recovery.RetCode > 128 ? recovery.RetCode - 128 : 0;
    const char *name = signal ? strsignal(signal) : nullptr;
    error = "the compiler crashed while compiling " + what +
            (name ? std::string(" (") + name + ")" : "") +
            "; please report it with the model";
  }
  return error + " (the memory that compilation held stays allocated)";
}

CompileResult protectedCompile(const CompileRequest &request) {
  CompileResult result;
  if (std::optional<std::string> error = runProtected(
          [&] { runCompile(request, result); }, "'" + request.path + "'")) {
    CompileResult failed;
    failed.diagnostics = result.diagnostics;
    failed.error = *error;
    return failed;
  }
  return result;
}

} // namespace

void bindCompiler(py::module_ &m) {
  m.def(
      "compile",
      [](const std::string &path, std::optional<std::string> output,
         const std::string &emit, const std::string &stage,
         const std::string &entry, const std::string &weightFormat,
         const std::string &triple, const std::string &cpu,
         const std::string &features, unsigned optLevel,
         const std::string &linker, const std::string &kernels,
         const std::string &floatWeights, const std::string &kvCache,
         bool lastTokenLogits) -> py::tuple {
        CompileRequest request;
        request.path = path;
        request.output = std::move(output);
        std::optional<EmitKind> kind = parseEmitKind(emit);
        if (!kind)
          throw py::value_error("unknown emit='" + emit +
                                "' (expected 'so', 'obj', 'mlir' or 'llvm')");
        std::optional<MLIRStage> mlirStage = parseMLIRStage(stage);
        if (!mlirStage)
          throw py::value_error("unknown mlir_stage='" + stage +
                                "' (expected 'input', 'linalg', "
                                "'bufferized' or 'llvm')");
        if (!request.output && *kind != EmitKind::MLIR &&
            *kind != EmitKind::LLVM)
          throw py::value_error("emit='" + emit + "' needs an output path");
        CompileOptions &options = request.options;
        options.emit = *kind;
        options.stage = *mlirStage;
        options.entry = entry;
        if (!weightFormat.empty()) {
          options.weightFormat = symbolizeTernaryFormat(weightFormat);
          if (!options.weightFormat)
            throw py::value_error("unknown weight_format='" + weightFormat +
                                  "' (expected 'int8', 'i2' or 'base3')");
        }
        if (!floatWeights.empty()) {
          std::optional<FloatPrecision> precision =
              symbolizeFloatPrecision(floatWeights);
          if (!precision)
            throw py::value_error("unknown float_weights='" + floatWeights +
                                  "' (expected 'f32', 'f16' or 'int8')");
          options.floatWeights = *precision;
        }
        if (!kvCache.empty()) {
          std::optional<KVCacheType> cache = symbolizeKVCacheType(kvCache);
          if (!cache)
            throw py::value_error("unknown kv_cache='" + kvCache +
                                  "' (expected 'f16' or 'f32')");
          options.kvCache = *cache;
        }
        options.lastTokenLogits = lastTokenLogits;
        setTarget(options, triple);
        options.target.cpu = cpu;
        options.target.features = features;
        options.target.optLevel = optLevel;
        options.linker = linker;
        options.kernels = kernels.empty() ? "auto" : kernels;

        CompileResult result;
        {
          py::gil_scoped_release release;
          result = protectedCompile(request);
        }
        if (!result.ok) {
          std::string message = result.error;
          if (result.diagnostics.empty())
            message += " (the compiler reported no diagnostic)";
          else
            message += ":\n" + result.diagnostics;
          while (!message.empty() && message.back() == '\n')
            message.pop_back();
          throw CompileFailure{message, result.diagnostics};
        }
        py::object text = py::none();
        if (result.text)
          text = toStr(*result.text);
        return py::make_tuple(text, toStr(result.diagnostics));
      },
      py::arg("path"), py::arg("output"), py::arg("emit"), py::arg("stage"),
      py::arg("entry"), py::arg("weight_format"), py::arg("triple"),
      py::arg("cpu"), py::arg("features"), py::arg("opt_level"),
      py::arg("linker"), py::arg("kernels"), py::arg("float_weights"),
      py::arg("kv_cache"), py::arg("last_token_logits"),
      "Compiles the model at `path`. Returns (text or None, diagnostics); "
      "raises CompileError. Use bitnet_mlir.compile().");

  // For the tests of the above: a fatal error or a crash inside the
  // protection compile() runs under.
  m.def(
      "_fail_in_compiler",
      [](const std::string &how) {
        std::optional<std::string> error;
        {
          py::gil_scoped_release release;
          error = runProtected(
              [&] {
                if (how == "fatal")
                  llvm::report_fatal_error("a fatal error for the test");
                if (how == "crash")
                  std::raise(SIGSEGV);
              },
              "the test's work");
        }
        if (error)
          throw CompileFailure{*error, ""};
      },
      py::arg("how"), "For tests: 'fatal' or 'crash' inside compile()'s "
                      "protection; raises CompileError.");

  m.attr("producer") = getProducerString().str();
}

} // namespace bitnet_python
