//===- bitnet-compile.cpp - Compiles a model to a shared object ------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
//   bitnet-compile model.mlir -o model.so
//   bitnet-compile model.onnx --input-shape=x:1x128 -o model.so
//   bitnet-compile model.mlir --emit=mlir --mlir-stage=linalg
//   bitnet-compile model.mlir --emit=obj --target=aarch64-linux-gnu
//
//===----------------------------------------------------------------------===//

#include "bitnet/Compiler/Compiler.h"
#include "bitnet/Target/Target.h"

#if BITNET_COMPILE_TUNE
#include "Tune.h"
#include "bitnet_rt/bitnet_rt.h"
#endif

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::bitnet;
namespace cl = llvm::cl;

static cl::OptionCategory category("bitnet-compile options");

namespace {
/// Parses an enum option as cl::parser does, but names the accepted values
/// when the value is not one of them.
template <typename T>
class ChoiceParser : public cl::parser<T> {
public:
  using cl::parser<T>::parser;

  bool parse(cl::Option &option, llvm::StringRef, llvm::StringRef arg,
             T &value) {
    SmallVector<llvm::StringRef> names;
    for (const auto &choice : this->Values) {
      if (choice.Name == arg) {
        value = choice.V.getValue();
        return false;
      }
      names.push_back(choice.Name);
    }
    return option.error("unknown value '" + arg + "' (expected " +
                        llvm::join(llvm::ArrayRef(names).drop_back(), ", ") +
                        " or " + names.back() + ")");
  }
};
} // namespace

static cl::opt<std::string> inputPath(cl::Positional,
                                      cl::desc("<model.mlir | model.onnx | model.gguf | checkpoint-dir | ->"),
                                      cl::Required, cl::cat(category));

static cl::opt<std::string> outputPath(
    "o",
    cl::desc("Output file (default: the input's name with the phase's "
             "extension for obj/so, standard output for mlir/llvm)"),
    cl::value_desc("path"), cl::cat(category));

static cl::opt<std::string> emit(
    "emit",
    cl::desc("Phase to write: mlir (MLIR text), llvm (LLVM IR), obj (object "
             "file), so (shared object, the default), ptx (the kernels of "
             "--target=nvptx) or tokenizer (the tokenizer the model carries, "
             "as the runtime reads it: JSON)"),
    cl::init("so"), cl::cat(category));

static cl::opt<std::string> mlirStage(
    "mlir-stage",
    cl::desc("With --emit=mlir, how far to lower: input (the default), "
             "linalg, bufferized or llvm"),
    cl::init("input"), cl::cat(category));

static cl::opt<std::string>
    entry("entry",
          cl::desc("Entry function (default: the only public function)"),
          cl::cat(category));

static cl::opt<TernaryFormat, false, ChoiceParser<TernaryFormat>> weightFormat(
    "weight-format",
    cl::desc("Re-encode ternary weights (default: keep each weight as the "
             "model stores it)"),
    ternaryFormatValues(),
    cl::cat(category));

static cl::opt<FloatPrecision, false, ChoiceParser<FloatPrecision>>
    floatWeights(
    "float-weights",
    cl::desc("Precision of the float weights of embeddings and dense layers "
             "(a decoder's embedding table and head)"),
    cl::init(defaults::kFloatWeights),
    floatPrecisionValues(),
    cl::cat(category));

static cl::opt<KVCacheType, false, ChoiceParser<KVCacheType>> kvCache(
    "kv-cache",
    cl::desc("Element type of a decoder's KV caches (the state inputs its "
             "attention updates)"),
    cl::init(defaults::kKVCache),
    kvCacheTypeValues(),
    cl::cat(category));

static cl::opt<bool> lastTokenLogits(
    "last-token-logits",
    cl::desc("Compute a decoder step's logits for its last token only "
             "(logits [1, V]): a prefill build for generation, where the head "
             "then runs once per step instead of once per token"),
    cl::init(false), cl::cat(category));

static cl::opt<int64_t> maxSequences(
    "max-sequences",
    cl::desc("Build a checkpoint's decoder step for up to N concurrent "
             "sequences (continuous batching, as bitnet-serve runs it): "
             "inputs tokens, positions and slots [S] (S = N unless "
             "--input-shape=tokens:S), each token appended to the KV cache "
             "slot of its sequence; caches [N, C, KV heads, head size]. "
             "CPU targets"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));

static cl::opt<int64_t> maxContext(
    "max-context",
    cl::desc("Tokens a checkpoint's KV cache holds, a sequence (default: "
             "the model's context length); caps memory, e.g. with "
             "--max-sequences"),
    cl::value_desc("tokens"), cl::init(0), cl::cat(category));

/// The prompt tokens a step of the 'prefill' entry takes by default (fewer
/// when the KV cache holds fewer than twice as many).
static constexpr int64_t kDefaultPrefillTokens = 128;

static cl::opt<int64_t> prefillTokens(
    "prefill-tokens",
    cl::desc("Also build a checkpoint's decoder step for S prompt tokens at "
             "a time, whose logits are the last token's, as the entry "
             "'prefill' of the same shared object: the one-token step and it "
             "share the weights (one copy) and the KV caches' shapes, and "
             "bitnet-generate runs a prompt through it. The weights are laid "
             "out for the S-token step. By default a checkpoint's one-token "
             "shared object for a CPU gets S = 128 (half the KV cache when "
             "that is less; not with --tune, which times the families for "
             "the one-token step), which about doubles the compile time; 0 "
             "builds no entry"),
    cl::value_desc("S"), cl::init(0), cl::cat(category));

static cl::opt<bool> oneTokenEntry(
    "one-token-entry",
    cl::desc("With --max-sequences and more than one token a step: also "
             "build the step for a single token over the same weights and KV "
             "caches, as the entry 'one', which bitnet-serve runs when a step "
             "has one token to run (a single stream), instead of paying for "
             "all T (on by default; the compile takes about twice as long)"),
    cl::init(true), cl::cat(category));

static cl::opt<std::string> kernels(
    "kernels",
    cl::desc("Kernels for linear layers with constant weights: auto (the "
             "best the target has, the default), reference (the reference "
             "lowering only), or a kernel family: avx512-lut (table lookups, "
             "1.67 bits a weight; AVX-512 VBMI), avx512vnni, avxvnni, avx2 "
             "(multiply-add, 2 bits a weight; x86), neon (AArch64 with the "
             "dot product extension). Where the target has "
             "avx512-lut, auto lets a cost model pick it or avx512vnni per "
             "layer and records the choice in the IR"),
    cl::init("auto"), cl::cat(category));

static cl::opt<bool> tune(
    "tune",
    cl::desc("Time kernel candidates for each distinct layer shape of the "
             "model on this machine (--kernels=auto, code for this "
             "machine's CPU): for bitlinear layers the two families "
             "(multiply-add, table lookup; AVX-512 VNNI and VBMI) and the "
             "prefetch distance of the family taken, for a dense layer (the "
             "head) its kernel's block shape. A candidate replaces the "
             "compiler's choice where it measured at least 10% faster; the "
             "choice and its times are recorded in the bitnet.kernel "
             "attribute. Measurements are kept in --tuning-cache and reused; "
             "about 20 seconds per new shape of a large model"),
    cl::cat(category));

static cl::opt<std::string> tuningCache(
    "tuning-cache",
    cl::desc("The file --tune keeps its measurements in, per CPU, shape and "
             "thread count (default: $XDG_CACHE_HOME/bitnet-mlir/"
             "tuning.json, else ~/.cache/bitnet-mlir/tuning.json)"),
    cl::value_desc("file"), cl::cat(category));

static cl::opt<int> tuneThreads(
    "tune-threads",
    cl::desc("Threads --tune runs the layers on: those the model will run "
             "on (default: the online cores, as bitnet-run and "
             "bitnet-generate use)"),
    cl::init(0), cl::cat(category));

static cl::opt<bool> retune(
    "retune",
    cl::desc("With --tune, time every shape again, even those the cache "
             "has"),
    cl::cat(category));

static cl::list<std::string> tunedKernels(
    "tuned-kernels",
    cl::desc("Kernel choices as --tune makes them, to replay a tuning or to "
             "test a choice: MxNxK:mad|lut|auto:mad_ns:lut_ns[:prefetch] for "
             "a bitlinear shape (applied with --kernels=auto), "
             "dense:MxNxK:rows:vectors:prefetch:ns:default_ns for a dense "
             "one; builds for this machine's CPU only"),
    cl::value_desc("entry,..."), cl::CommaSeparated, cl::Hidden,
    cl::cat(category));

static cl::list<std::string> variants(
    "variants",
    cl::desc("More builds for other CPUs in the same shared object, best "
             "first, e.g. --cpu=x86-64 --variants=native,x86-64-v3: the "
             "runtime runs the first the machine supports, else the "
             "baseline (--cpu)"),
    cl::CommaSeparated, cl::value_desc("cpu,..."), cl::cat(category));

static cl::opt<std::string> triple(
    "target",
    cl::desc("Target triple, e.g. x86_64-linux-gnu or aarch64-linux-gnu "
             "(default: this machine), or nvptx: kernels for an NVIDIA GPU "
             "(--gpu-arch), run by libbitnet_rt through the CUDA driver"),
    cl::cat(category));

static cl::opt<std::string> gpuArch(
    "gpu-arch",
    cl::desc("With --target=nvptx, the NVIDIA GPU architecture: sm_80, sm_90 "
             "(the default), ..."),
    cl::init("sm_90"), cl::cat(category));

static cl::opt<std::string> cudaPath(
    "cuda-path",
    cl::desc("CUDA toolkit for libdevice and ptxas (default /usr/local/cuda)"),
    cl::init("/usr/local/cuda"), cl::cat(category));

static cl::opt<int64_t> gpuGemvRows(
    "gpu-gemv-rows",
    cl::desc("With --target=nvptx, the weight rows each warp of a W2A8 "
             "kernel takes: 1, 2, 4, 8, 16 or 32 (default: chosen per shape "
             "from the padding of K and the bytes in flight); for tuning on "
             "a GPU"),
    cl::init(0), cl::cat(category));

static cl::opt<bool> gpuEmulation(
    "gpu-emulation",
    cl::desc("With --target=nvptx, also build every kernel for this CPU, so "
             "that the model runs without a GPU through the CUDA driver "
             "emulator (libbitnet_cuda_emulator.so named by "
             "$BITNET_CUDA_DRIVER): slow, for testing"),
    cl::cat(category));

static cl::opt<std::string>
    cpu("cpu",
        cl::desc("Target CPU, e.g. sapphirerapids or neoverse-v1 (default: "
                 "this machine's CPU for the host triple, generic otherwise)"),
        cl::cat(category));

static cl::opt<std::string>
    features("features",
             cl::desc("Extra target features, e.g. -avx512f,+avx2"),
             cl::cat(category));

static cl::opt<unsigned> optLevel("opt-level",
                                  cl::desc("LLVM optimisation level, 0 to 3"),
                                  cl::init(2), cl::cat(category));

static cl::opt<std::string>
    linker("linker",
           cl::desc("Compiler driver that links shared objects (default: cc "
                    "for this machine, clang with lld for other targets)"),
           cl::cat(category));

static cl::list<std::string> inputShapes(
    "input-shape",
    cl::desc("Static shape of an ONNX graph input with symbolic or unknown "
             "dimensions, e.g. --input-shape=input_ids:1x128 (repeatable)"),
    cl::value_desc("name:dims"), cl::cat(category));

static cl::opt<bool> strictFloat(
    "onnx-strict-float",
    cl::desc("Follow an ONNX graph's float arithmetic to the last bit when "
             "recognising BitLinear layers. By default the forms of training "
             "code are read as the quantiser the deployed model runs: "
             "x + (q - x) as q, 127 * (1 / m) as 127 / m, near-ternary "
             "weights as ternary (the int8 codes may differ in rare ties)"),
    cl::cat(category));

static cl::opt<bool> verbose("v",
                             cl::desc("Print each stage and its time, and what "
                                      "each ONNX BitLinear layer became (or "
                                      "why a near miss stays float)"),
                             cl::cat(category));

static cl::opt<int64_t> maxTensorBytes(
    "max-tensor-bytes",
    cl::desc("The largest tensor a model may hold, in bytes (constants, "
             "inputs and intermediates; default 32 GiB)"),
    cl::init(int64_t(32) << 30), cl::cat(category));

static cl::opt<bool> quiet("q",
                           cl::desc("Print nothing but errors and warnings "
                                    "(no progress)"),
                           cl::cat(category));

enum class ProgressMode { Auto, Always, Never };
static cl::opt<ProgressMode> progressMode(
    "progress",
    cl::desc("Show the running stage and its time once a compile has run a "
             "second"),
    cl::values(clEnumValN(ProgressMode::Auto, "auto",
                          "when stderr is a terminal (the default)"),
               clEnumValN(ProgressMode::Always, "always", "always"),
               clEnumValN(ProgressMode::Never, "never", "never")),
    cl::init(ProgressMode::Auto), cl::cat(category));

static cl::opt<unsigned> progressAfterMs(
    "progress-after-ms",
    cl::desc("How long a compile runs before its progress shows"),
    cl::init(1000), cl::Hidden, cl::cat(category));

/// What an imported decoder step takes, from its arguments: the tokens a
/// step (`tokens`) and the rows of its KV caches (the first dimension of
/// cache.*, a one-sequence step's); 0 where it has none.
struct StepShape {
  int64_t tokens = 0, cacheRows = 0;
};
static StepShape stepShape(ModuleOp module) {
  StepShape shape;
  module.walk([&](func::FuncOp func) {
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      auto name = func.getArgAttrOfType<StringAttr>(i, "bitnet.name");
      auto type = dyn_cast<RankedTensorType>(func.getArgument(i).getType());
      if (!name || !type || type.getRank() < 1 || type.isDynamicDim(0))
        continue;
      int64_t first = type.getDimSize(0);
      if (name.getValue() == "tokens")
        shape.tokens = first;
      else if (name.getValue().starts_with("cache."))
        shape.cacheRows =
            shape.cacheRows ? std::min(shape.cacheRows, first) : first;
    }
  });
  return shape;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerAsmPrinterCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::SetVersionPrinter(
      [](llvm::raw_ostream &os) { printVersion(os, "bitnet-compile"); });
  // LLVM's own options (targets, passes) say nothing about compiling a
  // model: --help lists this tool's; --help-hidden lists them all.
  // (cl::HideUnrelatedOptions would hide them from --help-hidden too.)
  for (auto &entry : cl::getRegisteredOptions()) {
    cl::Option *option = entry.second;
    bool shown = llvm::any_of(option->Categories, [](cl::OptionCategory *c) {
      // --help, --version and the like are LLVM's "Generic Options".
      return c == &category || c->getName() == "Generic Options";
    });
    if (!shown && option->getOptionHiddenFlag() == cl::NotHidden)
      option->setHiddenFlag(cl::Hidden);
  }
  cl::ParseCommandLineOptions(
      argc, argv,
      "bitnet-compile: compiles a BitNet b1.58 model into a shared object\n\n"
      "The shared object exports the entry point described in\n"
      "runtime/include/bitnet_rt/model_abi.h; run it with bitnet-run or load\n"
      "it with libbitnet_rt. --emit shows any phase on the way.\n\n"
      "MLIR's pass-manager options (--mlir-timing,\n"
      "--mlir-print-ir-after-all, ...) work too; --help-hidden lists them.\n");

  auto fail = [](const llvm::Twine &message) {
    llvm::WithColor::error(llvm::errs(), "bitnet-compile") << message << "\n";
    return 1;
  };
  if (quiet && verbose)
    return fail("-q and -v exclude each other");
  CompileOptions options;
  std::optional<EmitKind> kind = parseEmitKind(emit);
  if (!kind)
    return fail("unknown --emit=" + emit +
                " (expected mlir, llvm, obj, so, ptx or tokenizer)");
  options.emit = *kind;
  std::optional<MLIRStage> stage = parseMLIRStage(mlirStage);
  if (!stage)
    return fail("unknown --mlir-stage=" + mlirStage +
                " (expected input, linalg, bufferized or llvm)");
  if (mlirStage.getNumOccurrences() && options.emit != EmitKind::MLIR)
    return fail("--mlir-stage needs --emit=mlir");
  options.stage = *stage;
  options.entry = entry;
  if (weightFormat.getNumOccurrences())
    options.weightFormat = weightFormat;
  options.floatWeights = floatWeights;
  options.kvCache = kvCache;
  options.lastTokenLogits = lastTokenLogits;
  setTarget(options, triple);
  options.target.cpu = cpu;
  options.target.features = features;
  options.target.optLevel = optLevel;
  // Options of the nvptx target given for another one.
  if (options.backend != "nvptx") {
    if (gpuArch.getNumOccurrences())
      return fail("--gpu-arch needs --target=nvptx");
  }
  options.gpuArch = gpuArch;
  options.cudaPath = cudaPath;
  options.gpuEmulation = gpuEmulation;
  options.gpuGemvRows = gpuGemvRows;
  options.linker = linker;
  options.kernels = kernels;
  options.tunedKernels.assign(tunedKernels.begin(), tunedKernels.end());
  options.variants.assign(variants.begin(), variants.end());
  options.verbose = verbose;
  if (maxTensorBytes <= 0)
    return fail("--max-tensor-bytes must be > 0");
  options.maxTensorBytes = maxTensorBytes;
  options.applyPassManagerCLOptions = true;
  if (llvm::Error error = validateCompileOptions(options))
    return fail(llvm::toString(std::move(error)));
  if (maxSequences.getNumOccurrences() &&
      (maxSequences < 1 || maxSequences > 4096))
    return fail("--max-sequences must be between 1 and 4096");
  if (maxContext.getNumOccurrences() && (maxContext < 1 || maxContext > (1 << 24)))
    return fail("--max-context must be between 1 and 16777216");
  if (maxSequences > 0 && options.backend != "cpu")
    return fail("--max-sequences builds for CPU targets only");
  if (maxSequences > 0 && lastTokenLogits)
    return fail("--last-token-logits does not apply to a --max-sequences "
                "build (each token's logits belong to its own sequence)");
  if (prefillTokens.getNumOccurrences() && prefillTokens != 0) {
    if (prefillTokens < 2 || prefillTokens > 65536)
      return fail("--prefill-tokens must be 0 (no entry) or between 2 and "
                  "65536");
    if (maxSequences > 0)
      return fail("--prefill-tokens does not apply to a --max-sequences "
                  "build");
    if (options.backend != "cpu")
      return fail("--prefill-tokens builds for CPU targets only");
    if (options.emit != EmitKind::SharedObject)
      return fail("--prefill-tokens needs --emit=so (the entry is a build of "
                  "its own in the shared object)");
    if (!options.variants.empty())
      return fail("--prefill-tokens and --variants do not combine");
  }
  if (!tune && (tuningCache.getNumOccurrences() ||
                tuneThreads.getNumOccurrences() || retune))
    return fail("--tuning-cache, --tune-threads and --retune need --tune");
  if (tuneThreads.getNumOccurrences() && (tuneThreads < 1 || tuneThreads > 1024))
    return fail("--tune-threads must be between 1 and 1024");
#if !BITNET_COMPILE_TUNE
  if (tune)
    return fail("--tune needs the runtime library, which this bitnet-compile "
                "was built without (BITNET_ENABLE_RUNTIME=OFF)");
#endif

  std::string output = outputPath;
  if (output.empty()) {
    bool text = options.emit == EmitKind::MLIR || options.emit == EmitKind::LLVM ||
                options.emit == EmitKind::PTX ||
                options.emit == EmitKind::Tokenizer;
    if (text || inputPath == "-") {
      if (!text)
        return fail("writing a binary phase needs -o when reading stdin");
      output = "-";
    } else {
      // A checkpoint directory given as "dir/" names the output after dir.
      llvm::SmallString<128> path(llvm::sys::path::filename(
          llvm::StringRef(inputPath).rtrim('/')));
      llvm::sys::path::replace_extension(path,
                                         getDefaultExtension(options.emit));
      output = path.str().str();
    }
  }

  // An output that cannot be written is refused before any work.
  if (llvm::Error error = checkOutputPath(output))
    return fail(llvm::toString(std::move(error)));

  // The tokenizer of a checkpoint (a directory, its tokenizer.json alone,
  // a GGUF file) is read without importing the model.
  llvm::StringRef input(inputPath);
  if (options.emit == EmitKind::Tokenizer &&
      (input.ends_with(".json") || input.ends_with(".gguf") ||
       llvm::sys::fs::is_directory(input))) {
    llvm::Expected<std::string> json = readCheckpointTokenizer(input);
    if (!json)
      return fail(llvm::toString(json.takeError()));
    std::string message;
    auto out = openOutputFile(output, &message);
    if (!out)
      return fail(message);
    out->os() << *json << "\n";
    out->keep();
    return 0;
  }

  // Progress on a terminal, unless -v prints every stage or -q nothing.
  std::unique_ptr<ProgressLine> progress;
  if (!verbose && !quiet &&
      (progressMode == ProgressMode::Always ||
       (progressMode == ProgressMode::Auto && llvm::errs().is_displayed())))
    progress = std::make_unique<ProgressLine>(
        llvm::errs(), std::chrono::milliseconds(progressAfterMs));
  setProgressLine(progress.get());

  MLIRContext context;
  prepareContext(context);
  llvm::SourceMgr sourceMgr;
  CompilerDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module =
      loadModel(inputPath, context, sourceMgr, inputShapes, strictFloat,
                verbose, DecoderShape{maxSequences, maxContext});
  if (!module)
    return 1;
  bool checkpoint = isCheckpointPath(inputPath);
  StepShape step = stepShape(*module);
  // Another step of the model in the same shared object: the input shapes
  // given, but `tokens` tokens a step.
  auto addEntry = [&](StringRef name, int64_t tokens, bool lastTokenOnly,
                      int64_t sequences) {
    std::vector<std::string> shapes{"tokens:" + std::to_string(tokens)};
    for (const std::string &spec : inputShapes)
      if (llvm::StringRef(spec).split(':').first != "tokens")
        shapes.push_back(spec);
    ModelEntry entry;
    entry.name = name.str();
    entry.lastTokenLogits = lastTokenOnly;
    entry.load = [&, shapes, sequences]() {
      return loadModel(inputPath, context, sourceMgr, shapes, strictFloat,
                       /*verbose=*/false, DecoderShape{sequences, maxContext});
    };
    options.entries.push_back(std::move(entry));
  };
  int64_t entryTokens = prefillTokens;
  // The default: a one-token step of a checkpoint in a shared object for a
  // CPU carries a prefill step, half the KV cache at most.
  if (!prefillTokens.getNumOccurrences() && checkpoint &&
      options.emit == EmitKind::SharedObject && options.backend == "cpu" &&
      maxSequences == 0 && !lastTokenLogits && step.tokens == 1 &&
      options.variants.empty() && !tune)
    entryTokens = std::min(kDefaultPrefillTokens, step.cacheRows / 2);
  if (entryTokens >= 2) {
    if (!checkpoint)
      return fail("--prefill-tokens applies to checkpoints (a GGUF file or a "
                  "Hugging Face directory) only");
    addEntry("prefill", entryTokens, /*lastTokenOnly=*/true, 0);
    options.layoutTokens = std::max<int64_t>(entryTokens, step.tokens);
  }
  // A batched step of T > 1 tokens: the entry 'one', a single token over
  // the same caches.
  if (maxSequences > 0 && oneTokenEntry && step.tokens > 1 &&
      options.emit == EmitKind::SharedObject && options.variants.empty()) {
    addEntry("one", 1, /*lastTokenOnly=*/false, maxSequences);
    options.layoutTokens = step.tokens;
  }
#if BITNET_COMPILE_TUNE
  if (tune) {
    TuneSettings settings;
    settings.cachePath =
        tuningCache.empty() ? defaultTuningCachePath() : tuningCache.getValue();
    settings.threads =
        tuneThreads ? tuneThreads.getValue() : bitnet_default_num_threads();
    settings.refresh = retune;
    settings.verbose = verbose;
    settings.quiet = quiet;
    llvm::Error error = tuneKernels(*module, options, settings);
    setProgressLine(progress.get());
    if (error)
      return fail(llvm::toString(std::move(error)));
  }
#endif
  if (failed(compileModule(*module, options, output)))
    return 1;
  return 0;
}
