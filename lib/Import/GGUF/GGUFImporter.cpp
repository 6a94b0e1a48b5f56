//===- GGUFImporter.cpp - GGUF models into the bitnet dialect -------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/GGUF/GGUFImporter.h"

#include "bitnet/Import/GGUF/GGUFTensors.h"

#include "mlir/IR/Diagnostics.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::bitnet;

namespace {
/// What differs between the BitNet architectures of GGUF.
struct Architecture {
  const char *name;
  FFNActivation activation;
};
} // namespace

static const Architecture kArchitectures[] = {
    {"bitnet-b1.58", FFNActivation::SquaredRelu},
    // bitnet.cpp's name for the same graph written from Microsoft's own
    // checkpoint format.
    {"bitnet-25", FFNActivation::SquaredRelu},
    {"bitnet", FFNActivation::Silu},
};

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

namespace {
/// The tensors of a GGUF decoder, named as llama.cpp names them.
class GGUFWeights : public DecoderWeights {
public:
  explicit GGUFWeights(const gguf::File &file) : file(file) {}

  llvm::Expected<FloatTensor> embedding() override {
    return floatTensor("token_embd.weight", /*keepHalf=*/true);
  }
  llvm::Expected<FloatTensor> outputNorm() override {
    return floatTensor("output_norm.weight", false);
  }
  llvm::Expected<std::optional<FloatTensor>> head() override {
    if (!file.findTensor("output.weight"))
      return std::nullopt;
    llvm::Expected<FloatTensor> t = floatTensor("output.weight", true);
    if (!t)
      return t.takeError();
    return std::optional<FloatTensor>(std::move(*t));
  }
  llvm::Expected<FloatTensor> norm(NormKind kind, int64_t layer) override {
    const char *names[] = {"attn_norm", "attn_sub_norm", "ffn_norm",
                           "ffn_sub_norm"};
    return floatTensor(blockName(layer, names[static_cast<int>(kind)]) +
                           ".weight",
                       false);
  }
  llvm::Expected<TernaryMatrix> linear(LinearKind kind, int64_t layer,
                                       int64_t rows, int64_t cols) override {
    const char *names[] = {"attn_q",   "attn_k",  "attn_v",  "attn_output",
                           "ffn_gate", "ffn_up",  "ffn_down"};
    std::string base = blockName(layer, names[static_cast<int>(kind)]);
    const gguf::Tensor *t = find(base + ".weight");
    if (!t)
      return missing(base + ".weight");
    SmallVector<int64_t, 4> shape = t->shape();
    if (shape.size() != 2 || shape[0] != rows || shape[1] != cols)
      return makeError(describeShapeMismatch(file.getPath(), t->name, shape,
                                             {rows, cols}) +
                       " (outputs x inputs)");
    llvm::Expected<TernaryMatrix> m = gguf::decodeTernary(file, *t);
    releaseMappedPages(t->data.data(), t->data.size());
    if (!m)
      return m.takeError();
    // The 1bitLLM conversions keep a per-tensor scale beside the weight,
    // which multiplies the layer's output.
    if (const gguf::Tensor *s = find(base + ".scale")) {
      llvm::Expected<FloatTensor> scale = gguf::decodeFloat(file, *s);
      if (!scale)
        return scale.takeError();
      if (scale->f32.size() != 1)
        return makeError(file.getPath() + ": tensor '" + s->name +
                         "' has " + Twine(scale->f32.size()) +
                         " values, expected one scale");
      m->scale *= scale->f32.front();
    }
    return m;
  }

private:
  static std::string blockName(int64_t layer, StringRef name) {
    return "blk." + std::to_string(layer) + "." + name.str();
  }
  const gguf::Tensor *find(StringRef name) { return file.findTensor(name); }
  llvm::Error missing(StringRef name) {
    return makeError(file.getPath() + ": the model has no tensor '" + name +
                     "'");
  }
  llvm::Expected<FloatTensor> floatTensor(StringRef name, bool keepHalf) {
    const gguf::Tensor *t = find(name);
    if (!t)
      return missing(name);
    llvm::Expected<FloatTensor> result = gguf::decodeFloat(file, *t, keepHalf);
    releaseMappedPages(t->data.data(), t->data.size());
    return result;
  }

  const gguf::File &file;
};
} // namespace

/// The hyperparameters of `arch` from `<arch>.*` keys.
static llvm::Expected<DecoderConfig> readConfig(const gguf::File &file,
                                                const Architecture &arch) {
  DecoderConfig c;
  c.architecture = arch.name;
  c.activation = arch.activation;
  std::string p = std::string(arch.name) + ".";
  auto integer = [&](StringRef key, int64_t &out) -> llvm::Error {
    llvm::Expected<int64_t> v = file.getInteger(p + key.str());
    if (!v)
      return v.takeError();
    out = *v;
    return llvm::Error::success();
  };
  if (llvm::Error e = integer("embedding_length", c.hidden))
    return std::move(e);
  if (llvm::Error e = integer("block_count", c.layers))
    return std::move(e);
  if (llvm::Error e = integer("feed_forward_length", c.ffn))
    return std::move(e);
  if (llvm::Error e = integer("attention.head_count", c.heads))
    return std::move(e);
  if (llvm::Error e = integer("context_length", c.context))
    return std::move(e);
  llvm::Expected<std::optional<int64_t>> kv =
      file.getOptionalInteger(p + "attention.head_count_kv");
  if (!kv)
    return kv.takeError();
  c.kvHeads = kv->value_or(c.heads);
  if (c.heads <= 0 || c.hidden % c.heads != 0)
    return makeError(file.getPath() + ": " + p + "embedding_length (" +
                     Twine(c.hidden) + ") is not a multiple of " + p +
                     "attention.head_count (" + Twine(c.heads) + ")");
  c.headDim = c.hidden / c.heads;
  llvm::Expected<std::optional<int64_t>> rot =
      file.getOptionalInteger(p + "rope.dimension_count");
  if (!rot)
    return rot.takeError();
  if (*rot && **rot != c.headDim)
    return makeError(file.getPath() + ": " + p + "rope.dimension_count is " +
                     Twine(**rot) + ", but heads have " + Twine(c.headDim) +
                     " features; rotary embeddings on part of a head are not "
                     "supported");
  llvm::Expected<std::optional<double>> theta =
      file.getOptionalFloat(p + "rope.freq_base");
  if (!theta)
    return theta.takeError();
  c.ropeTheta = static_cast<float>(theta->value_or(10000.0));
  llvm::Expected<double> eps =
      file.getFloat(p + "attention.layer_norm_rms_epsilon");
  if (!eps)
    return eps.takeError();
  c.rmsEpsilon = static_cast<float>(*eps);
  c.ropeHalf = true;
  // The vocabulary size is the embedding's row count.
  const gguf::Tensor *embd = file.findTensor("token_embd.weight");
  if (!embd)
    return makeError(file.getPath() +
                     ": the model has no tensor 'token_embd.weight'");
  if (embd->dims.size() != 2)
    return makeError(file.getPath() +
                     ": tensor 'token_embd.weight' must have 2 dimensions");
  c.vocab = embd->dims[1];
  llvm::Expected<std::optional<int64_t>> vocab =
      file.getOptionalInteger(p + "vocab_size");
  if (!vocab)
    return vocab.takeError();
  if (*vocab && **vocab != c.vocab)
    return makeError(file.getPath() + ": " + p + "vocab_size is " +
                     Twine(**vocab) + ", but 'token_embd.weight' has " +
                     Twine(c.vocab) + " rows");
  return c;
}

/// The string array `key` as JSON; an error when one of its entries (a
/// `what`) is not valid UTF-8.
static llvm::Expected<llvm::json::Array>
utf8StringArray(const gguf::File &file, StringRef key, StringRef what) {
  llvm::Expected<std::vector<StringRef>> strings = file.getStringArray(key);
  if (!strings)
    return strings.takeError();
  llvm::json::Array array;
  array.reserve(strings->size());
  for (StringRef entry : *strings) {
    if (!llvm::json::isUTF8(entry))
      return makeError(file.getPath() + ": " + key + " holds a " + what +
                       " that is not valid UTF-8");
    array.push_back(entry.str());
  }
  return array;
}

llvm::Expected<std::string>
mlir::bitnet::tokenizerJSONFromGGUF(const gguf::File &file) {
  llvm::Expected<StringRef> model = file.getString("tokenizer.ggml.model");
  if (!model)
    return model.takeError();
  if (*model == "no_vocab")
    return makeError(file.getPath() +
                     ": the file carries no tokenizer (tokenizer.ggml.model "
                     "is \"no_vocab\")");
  llvm::json::Object out;
  out["model"] = model->str();
  llvm::Expected<std::optional<StringRef>> pre =
      file.getOptionalString("tokenizer.ggml.pre");
  if (!pre)
    return pre.takeError();
  out["pre"] = pre->value_or("default").str();
  // Llama 3's tokenizer takes a whole pre-token that is in the vocabulary as
  // one token (llama.cpp does so for this pre-tokenizer).
  out["ignore_merges"] = pre->value_or("") == "llama-bpe";
  llvm::Expected<llvm::json::Array> tokens =
      utf8StringArray(file, "tokenizer.ggml.tokens", "token");
  if (!tokens)
    return tokens.takeError();
  int64_t count = tokens->size();
  out["tokens"] = std::move(*tokens);
  if (file.lookup("tokenizer.ggml.token_type")) {
    llvm::Expected<std::vector<int64_t>> types =
        file.getIntegerArray("tokenizer.ggml.token_type");
    if (!types)
      return types.takeError();
    if (int64_t(types->size()) != count)
      return makeError(file.getPath() + ": tokenizer.ggml.token_type has " +
                       Twine(types->size()) + " entries for " + Twine(count) +
                       " tokens");
    out["token_type"] = llvm::json::Array(*types);
  }
  if (file.lookup("tokenizer.ggml.merges")) {
    llvm::Expected<llvm::json::Array> merges =
        utf8StringArray(file, "tokenizer.ggml.merges", "merge");
    if (!merges)
      return merges.takeError();
    out["merges"] = std::move(*merges);
  }
  if (file.lookup("tokenizer.ggml.scores")) {
    llvm::Expected<std::vector<double>> scores =
        file.getFloatArray("tokenizer.ggml.scores");
    if (!scores)
      return scores.takeError();
    if (int64_t(scores->size()) != count)
      return makeError(file.getPath() + ": tokenizer.ggml.scores has " +
                       Twine(scores->size()) + " entries for " +
                       Twine(count) + " tokens");
    out["scores"] = llvm::json::Array(*scores);
  }
  for (const char *key : {"bos_token_id", "eos_token_id", "eot_token_id",
                          "eom_token_id", "unknown_token_id",
                          "padding_token_id"}) {
    llvm::Expected<std::optional<int64_t>> id =
        file.getOptionalInteger(std::string("tokenizer.ggml.") + key);
    if (!id)
      return id.takeError();
    if (!*id)
      continue;
    if (**id < 0 || **id >= count)
      return makeError(file.getPath() + ": tokenizer.ggml." + key + " is " +
                       Twine(**id) + ", outside the " + Twine(count) +
                       " tokens");
    out[key] = **id;
  }
  for (const char *key :
       {"add_bos_token", "add_eos_token", "add_space_prefix"}) {
    llvm::Expected<std::optional<bool>> flag =
        file.getOptionalBool(std::string("tokenizer.ggml.") + key);
    if (!flag)
      return flag.takeError();
    if (*flag)
      out[key] = **flag;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(out));
  return text;
}

/// The module's metadata: architecture, tokenizer and chat template.
static llvm::Error collectMetadata(const gguf::File &file,
                                   const DecoderConfig &config,
                                   std::map<std::string, std::string> &meta) {
  meta["bitnet.architecture"] = config.architecture;
  // llama.cpp's "no_vocab" marks a model without a vocabulary.
  llvm::Expected<std::optional<StringRef>> tokenizerModel =
      file.getOptionalString("tokenizer.ggml.model");
  if (!tokenizerModel)
    return tokenizerModel.takeError();
  if (*tokenizerModel && **tokenizerModel != "no_vocab") {
    llvm::Expected<std::string> tokenizer = tokenizerJSONFromGGUF(file);
    if (!tokenizer)
      return tokenizer.takeError();
    meta["bitnet.tokenizer"] = std::move(*tokenizer);
  }
  llvm::Expected<std::optional<StringRef>> chat =
      file.getOptionalString("tokenizer.chat_template");
  if (!chat)
    return chat.takeError();
  if (*chat) {
    if (!llvm::json::isUTF8(**chat) || (*chat)->contains('\0'))
      return makeError(file.getPath() +
                       ": tokenizer.chat_template is not valid UTF-8 text");
    meta["bitnet.chat_template"] = (*chat)->str();
  }
  llvm::Expected<std::optional<StringRef>> name =
      file.getOptionalString("general.name");
  if (!name)
    return name.takeError();
  if (*name && llvm::json::isUTF8(**name) && !(*name)->contains('\0'))
    meta["bitnet.model_name"] = (*name)->str();
  return llvm::Error::success();
}

/// Imports an opened file; `path` labels diagnostics.
static OwningOpRef<ModuleOp>
importGGUF(llvm::Expected<std::unique_ptr<gguf::File>> file, StringRef path,
           MLIRContext &context, const CheckpointImportOptions &options) {
  Location loc = FileLineColLoc::get(&context, path, 0, 0);
  auto report = [&](llvm::Error err) -> OwningOpRef<ModuleOp> {
    emitError(loc) << llvm::toString(std::move(err));
    return {};
  };
  if (!file)
    return report(file.takeError());
  llvm::Expected<StringRef> archName =
      (*file)->getString("general.architecture");
  if (!archName)
    return report(archName.takeError());
  const Architecture *arch = nullptr;
  for (const Architecture &a : kArchitectures)
    if (*archName == a.name)
      arch = &a;
  if (!arch) {
    InFlightDiagnostic d = emitError(loc)
                           << path << ": architecture '" << *archName
                           << "' is not a BitNet architecture this compiler "
                              "reads";
    d.attachNote() << "supported: bitnet-b1.58 and bitnet-25 "
                      "(bitnet-b1.58-2B-4T), bitnet (the 1bitLLM models)";
    return {};
  }
  llvm::Expected<DecoderConfig> config = readConfig(**file, *arch);
  if (!config)
    return report(config.takeError());
  DecoderBuildOptions build;
  build.tokens = options.tokens;
  build.cacheCapacity = options.cacheCapacity;
  build.sequences = options.sequences;
  build.entry = options.entry;
  build.source = path.str();
  if (llvm::Error err = collectMetadata(**file, *config, build.metadata))
    return report(std::move(err));
  if (options.verbose)
    build.progress = [](int64_t layer, int64_t layers) {
      llvm::errs() << "\rbitnet-compile: read layer " << layer << " of "
                   << layers << (layer == layers ? "\n" : "");
    };
  GGUFWeights weights(**file);
  llvm::Expected<OwningOpRef<ModuleOp>> module =
      buildDecoder(context, *config, weights, build);
  if (!module)
    return report(module.takeError());
  return std::move(*module);
}

OwningOpRef<ModuleOp>
mlir::bitnet::importGGUFFile(StringRef path, MLIRContext &context,
                             const CheckpointImportOptions &options) {
  return importGGUF(gguf::File::open(path), path, context, options);
}

OwningOpRef<ModuleOp>
mlir::bitnet::importGGUFBuffer(llvm::MemoryBufferRef buffer,
                               MLIRContext &context,
                               const CheckpointImportOptions &options) {
  return importGGUF(gguf::File::parse(buffer), buffer.getBufferIdentifier(),
                    context, options);
}
