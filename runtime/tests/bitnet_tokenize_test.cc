//===- bitnet_tokenize_test.cc - bitnet-tokenize, and text in bitnet-generate //
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include "bitnet_rt/tokenizer.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

// The bitnet-compile of the whole project's build, or "" in the runtime's
// own build (tests/CMakeLists.txt).
#ifndef BITNET_COMPILE_PATH
#define BITNET_COMPILE_PATH ""
#endif

using namespace bitnet_test;

namespace {

Result Tokenize(const std::vector<std::string> &args,
                const std::string &input = "",
                const std::vector<std::string> *env = nullptr) {
  return RunProgram(BITNET_TOKENIZE_PATH, args, input, env);
}

Result Generate(const std::vector<std::string> &args) {
  return RunProgram(BITNET_GENERATE_PATH, args);
}

bool Contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

bool FileExists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

//===----------------------------------------------------------------------===//
// bitnet-tokenize
//===----------------------------------------------------------------------===//

const char *const kModel = BITNET_TEST_MODEL_TOKENIZER_DECODER;

// Tests that the runtime tools name their version, revision and model ABI.
TEST(BitnetTokenizeTest, Version) {
  for (const char *path : {BITNET_TOKENIZE_PATH, BITNET_GENERATE_PATH}) {
    Result r = RunProgram(path, {"--version"});
    EXPECT_EQ(r.exit_code, 0) << path;
    EXPECT_TRUE(Contains(r.out, "(bitnet-mlir) " +
                                    std::string(bitnet_rt_version()) +
                                    " (git "))
        << r.out;
    EXPECT_TRUE(Contains(r.out, "model ABI " +
                                    std::to_string(BITNET_MODEL_ABI_VERSION)))
        << r.out;
  }
}

TEST(BitnetTokenizeTest, Help) {
  Result r = Tokenize({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "usage: bitnet-tokenize SOURCE")) << r.out;
  EXPECT_TRUE(Contains(r.out, "--decode")) << r.out;
  EXPECT_TRUE(Contains(r.out, "MODEL.so")) << r.out;
  EXPECT_TRUE(Contains(r.out, "TOKENIZER.json")) << r.out;
}

TEST(BitnetTokenizeTest, UsageErrors) {
  for (const std::vector<std::string> &args :
       std::vector<std::vector<std::string>>{
           {},
           {kModel, "--bogus"},
           {kModel, "--decode", "--add-bos"},
           {kModel, "--decode", "--time"},
           {kModel, "--skip-special"}}) {
    Result r = Tokenize(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(Contains(r.err, "bitnet-tokenize --help")) << r.err;
  }
}

TEST(BitnetTokenizeTest, SourceErrorsNameTheFile) {
  std::string dir = MakeTempDir();
  std::string bad_json = dir + "/bad.json", text = dir + "/notes.txt";
  std::ofstream(bad_json) << "{\"model\":\"gpt2\",\"pre\":\"gpt-2\"}";
  std::ofstream(text) << "hello";
  struct Case {
    std::string source;
    std::vector<std::string> parts;
  };
  for (const Case &c : std::vector<Case>{
           {dir + "/missing.json", {"missing.json", "No such file"}},
           {bad_json, {"bad.json", "'tokens' is missing"}},
           {text,
            {"notes.txt", "not a source of a tokenizer", ".so", ".json",
             ".gguf", "checkpoint directory (with config.json)"}},
           {dir, {dir, "not a source of a tokenizer"}},
           {BITNET_TEST_MODEL_AFFINE, {"affine.so", "bitnet.tokenizer"}},
           {BITNET_TEST_MODEL_BROKEN_TOKENIZER,
            {"broken_tokenizer.so", "'merges[0]'"}},
       }) {
    Result r = Tokenize({c.source}, "hello");
    EXPECT_EQ(r.exit_code, 1) << c.source;
    EXPECT_EQ(r.out, "");
    for (const std::string &part : c.parts)
      EXPECT_TRUE(Contains(r.err, part)) << r.err << " lacks " << part;
  }
}

TEST(BitnetTokenizeTest, EncodesAndDecodesWithAModelsTokenizer) {
  Result r = Tokenize({kModel}, "Hi\xc3\xa9");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256 195 169\n");
  r = Tokenize({kModel, "--add-bos"}, "Hi");
  EXPECT_EQ(r.out, "257 256\n");
  r = Tokenize({kModel}, "<s>Hi</s>");
  EXPECT_EQ(r.out, "257 256 258\n");
  r = Tokenize({kModel, "--special-as-text"}, "<s>");
  EXPECT_EQ(r.out, "60 115 62\n");
  r = Tokenize({kModel}, "");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "\n");

  r = Tokenize({kModel, "--decode"}, "257 256, 195\n169 258");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<s>Hi\xc3\xa9</s>");
  r = Tokenize({kModel, "--decode", "--skip-special"}, "257 256 258");
  EXPECT_EQ(r.out, "Hi");
  // A character cut short at the end comes out as it is.
  r = Tokenize({kModel, "--decode"}, "72 226 130");
  EXPECT_EQ(r.out, "H\xe2\x82");
}

TEST(BitnetTokenizeTest, ReadsFilesInTurn) {
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/a.txt") << "Hi";
  std::ofstream(dir + "/b.txt") << "";
  std::ofstream(dir + "/c.txt") << "<s>\xc3\xa9";
  std::ofstream(dir + "/a.ids") << "72 195";
  std::ofstream(dir + "/b.ids") << "169 105";
  Result r = Tokenize({kModel, dir + "/a.txt", dir + "/b.txt", dir + "/c.txt"},
                      "not read");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256\n\n257 195 169\n");
  // Each file is a stream of its own: a character split across two files
  // is not joined.
  r = Tokenize({kModel, "--decode", dir + "/a.ids", dir + "/b.ids"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "H\xc3\xa9i");
  r = Tokenize({kModel, dir + "/a.txt", dir + "/missing.txt", dir + "/b.txt"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "256\n");
  EXPECT_TRUE(Contains(r.err, "missing.txt: No such file")) << r.err;
  r = Tokenize({kModel, "--decode", dir + "/missing.ids"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "missing.ids")) << r.err;
}

TEST(BitnetTokenizeTest, DecodeErrorsNameTheInput) {
  Result r = Tokenize({kModel, "--decode"}, "72 105 x7");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "input id 2 ('x7') is not an integer")) << r.err;
  r = Tokenize({kModel, "--decode"}, "72 3.5");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "input id 1 ('3.5')")) << r.err;
  r = Tokenize({kModel, "--decode"}, "72 260");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "input id 1")) << r.err;
  EXPECT_TRUE(Contains(r.err, "260 is out of range")) << r.err;
  r = Tokenize({kModel, "--decode"}, "99999999999");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "not an integer")) << r.err;
}

//===----------------------------------------------------------------------===//
// Sources read through bitnet-compile: GGUF files, checkpoint directories,
// Hugging Face tokenizer.json files
//===----------------------------------------------------------------------===//

// A copy of bitnet-tokenize in a directory of its own (so that no
// bitnet-compile is beside it unless a test puts one there), and a stand-in
// for bitnet-compile: a script that records its arguments and writes the
// test model's tokenizer JSON.
class CompilerSourceTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_EQ(mkdir((dir_ + "/bin").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir_ + "/path").c_str(), 0755), 0);
    tool_ = dir_ + "/bin/bitnet-tokenize";
    WriteFile(tool_, ReadFile(BITNET_TOKENIZE_PATH));
    ASSERT_EQ(chmod(tool_.c_str(), 0755), 0);
    ModelPtr model = LoadModel(kModel);
    WriteFile(dir_ + "/tokenizer.json",
              bitnet_model_metadata(model.get(), "bitnet.tokenizer"));
    // Sources: a GGUF file, a checkpoint directory with Hugging Face's
    // tokenizer.json, and one outside a checkpoint.
    WriteFile(dir_ + "/model.gguf", "GGUF");
    ASSERT_EQ(mkdir((dir_ + "/ckpt").c_str(), 0755), 0);
    WriteFile(dir_ + "/ckpt/config.json", "{}");
    WriteFile(dir_ + "/ckpt/tokenizer.json",
              "{\"version\": \"1.0\", \"model\" : {\"type\": \"BPE\"}}");
    ASSERT_EQ(mkdir((dir_ + "/loose").c_str(), 0755), 0);
    WriteFile(dir_ + "/loose/tokenizer.json",
              "{\"model\":\n {\"type\": \"BPE\"}}");
  }

  // Writes a stand-in bitnet-compile at `path` running `body` after
  // recording its arguments, one a line, in dir_/args.
  void WriteCompiler(const std::string &path,
                     const std::string &body = "cat \"$DIR/tokenizer.json\"") {
    WriteFile(path, "#!/bin/sh\nPATH=/usr/bin:/bin\nDIR='" + dir_ +
                        "'\nprintf '%s\\n' \"$@\" > \"$DIR/args\"\n" + body +
                        "\n");
    ASSERT_EQ(chmod(path.c_str(), 0755), 0);
  }

  // Runs the copy of bitnet-tokenize with PATH = `path`.
  Result Run(const std::vector<std::string> &args, const std::string &path,
             const std::string &input = "Hi") {
    std::vector<std::string> env = EnvironmentWithPath(path);
    return RunProgram(tool_.c_str(), args, input, &env);
  }

  std::string Args() const { return ReadFile(dir_ + "/args"); }

  std::string dir_, tool_;
};

TEST_F(CompilerSourceTest, RunsTheCompilerBesideItself) {
  WriteCompiler(dir_ + "/bin/bitnet-compile");
  Result r = Run({dir_ + "/model.gguf", "--add-bos"}, "/nonexistent");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "257 256\n");
  EXPECT_EQ(Args(), dir_ + "/model.gguf\n--emit=tokenizer\n-o\n-\n");
  // ... before the one on PATH.
  WriteCompiler(dir_ + "/path/bitnet-compile", "exit 1");
  r = Run({dir_ + "/model.gguf"}, dir_ + "/path");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256\n");
}

TEST_F(CompilerSourceTest, RunsTheCompilerOnPath) {
  WriteCompiler(dir_ + "/path/bitnet-compile");
  const std::string path = "/nonexistent::" + dir_ + "/path";
  Result r = Run({dir_ + "/model.gguf"}, path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256\n");
  // A checkpoint directory and Hugging Face's tokenizer.json go as they are.
  r = Run({dir_ + "/ckpt", "--decode"}, path, "256 257");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hi<s>");
  EXPECT_EQ(Args(), dir_ + "/ckpt\n--emit=tokenizer\n-o\n-\n");
  remove((dir_ + "/args").c_str());
  r = Run({dir_ + "/ckpt/tokenizer.json"}, path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256\n");
  EXPECT_EQ(Args(), dir_ + "/ckpt/tokenizer.json\n--emit=tokenizer\n-o\n-\n");
  // Also one outside a checkpoint directory.
  remove((dir_ + "/args").c_str());
  r = Run({dir_ + "/loose/tokenizer.json"}, path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Args(), dir_ + "/loose/tokenizer.json\n--emit=tokenizer\n-o\n-\n");
  // The runtime's own JSON is read without the compiler.
  remove((dir_ + "/args").c_str());
  r = Run({dir_ + "/tokenizer.json"}, "/nonexistent");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256\n");
  EXPECT_EQ(Args(), "");
}

TEST_F(CompilerSourceTest, ErrorsSayWhatIsNeeded) {
  // No compiler anywhere: the message names it and says why.
  for (const std::string &source :
       {dir_ + "/model.gguf", dir_ + "/ckpt", dir_ + "/ckpt/tokenizer.json"}) {
    Result r = Run({source}, "/nonexistent");
    EXPECT_EQ(r.exit_code, 1) << source;
    EXPECT_EQ(r.out, "");
    for (const std::string &part :
         {source, std::string("needs bitnet-compile"),
          std::string("--emit=tokenizer"),
          std::string("beside bitnet-tokenize (" + dir_ + "/bin/bitnet-compile)"),
          std::string("PATH")})
      EXPECT_TRUE(Contains(r.err, part)) << r.err << " lacks " << part;
  }
  // A directory that is not a checkpoint.
  WriteCompiler(dir_ + "/bin/bitnet-compile");
  Result r = Run({dir_ + "/loose"}, "/nonexistent");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "not a source of a tokenizer")) << r.err;
  // The compiler fails: its messages, then which source and why.
  WriteCompiler(dir_ + "/bin/bitnet-compile",
                "echo 'error: not a GGUF file' >&2; exit 3");
  r = Run({dir_ + "/model.gguf"}, "/nonexistent");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(Contains(r.err, "error: not a GGUF file")) << r.err;
  EXPECT_TRUE(Contains(r.err, "model.gguf")) << r.err;
  EXPECT_TRUE(Contains(r.err, "exit status 3")) << r.err;
  // ... or writes something that is not a tokenizer.
  WriteCompiler(dir_ + "/bin/bitnet-compile", "echo '{\"model\": 1}'");
  r = Run({dir_ + "/model.gguf"}, "/nonexistent");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "the tokenizer JSON from")) << r.err;
  EXPECT_TRUE(Contains(r.err, "'model'")) << r.err;
}

// With the real compiler (the whole project's build): the test checkpoints'
// tokenizer, from a GGUF file, a checkpoint directory and its
// tokenizer.json.
TEST(BitnetTokenizeCompilerTest, TestCheckpoints) {
  const std::string compiler = BITNET_COMPILE_PATH;
  if (compiler.empty())
    GTEST_SKIP() << "bitnet-compile is not part of this build";
  ASSERT_TRUE(FileExists(compiler))
      << compiler << " is part of this build but not built";
  const std::string models = BITNET_CHECKPOINT_MODELS_DIR;
  // Beside bitnet-tokenize in the project's build/bin; on PATH otherwise.
  const char *path = getenv("PATH");
  std::vector<std::string> env = EnvironmentWithPath(
      compiler.substr(0, compiler.rfind('/')) + ":" + (path ? path : ""));
  for (const std::string &source :
       {models + "/gguf/tiny-bitnet-b1.58-i2_s.gguf", models + "/hf/packed",
        models + "/hf/packed/tokenizer.json"}) {
    Result r = Tokenize({source, "--add-bos"}, "The quick brown fox", &env);
    EXPECT_EQ(r.exit_code, 0) << source << ": " << r.err;
    EXPECT_EQ(ParseIds(r.out),
              (std::vector<int32_t>{768, 51, 383, 220, 447, 292, 74, 293, 654,
                                    77, 282, 78, 87}))
        << source;
  }
}

// The tool on Llama 3's tokenizer (JSON converted from the tiktoken ranks)
// against llama.cpp's expected ids.
TEST(BitnetTokenizeTest, Llama3ConformanceCases) {
  const std::string dir = BITNET_TOKENIZER_TESTDATA;
  const std::string json = BITNET_LLAMA3_TOKENIZER_JSON;
  if (!FileExists(dir + "/llama-bpe.inp") || !FileExists(json))
    GTEST_SKIP() << "no Llama 3 tokenizer data in " << dir;
  // Each case in a file of its own, all in one run: one line of ids each.
  std::string inp = ReadFile(dir + "/llama-bpe.inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::string tmp = MakeTempDir();
  std::vector<std::string> texts, args = {json};
  for (size_t at = 0; at < inp.size();) {
    size_t next = inp.find(sep, at);
    ASSERT_NE(next, std::string::npos);
    texts.push_back(inp.substr(at, next - at));
    at = next + sep.size();
    args.push_back(tmp + "/case" + std::to_string(texts.size()));
    std::ofstream(args.back(), std::ios::binary) << texts.back();
  }
  Result r = Tokenize(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream got(r.out), want(ReadFile(dir + "/llama-bpe.out"));
  size_t cases = 0, matched = 0;
  for (std::string g, w; std::getline(want, w); ++cases) {
    ASSERT_LT(cases, texts.size()) << "more expected lines than cases";
    ASSERT_TRUE(std::getline(got, g));
    EXPECT_EQ(ParseIds(g), ParseIds(w))
        << "case " << cases << ": '" << texts[cases] << "'";
    matched += ParseIds(g) == ParseIds(w);
    if (cases % 8 == 0) { // and back, for some
      Result back = Tokenize({json, "--decode"}, g);
      EXPECT_EQ(back.out, texts[cases]);
    }
  }
  EXPECT_EQ(cases, texts.size());
  EXPECT_GT(cases, 0u);
  printf("bitnet-tokenize, llama-bpe: %zu of %zu cases match\n", matched,
         cases);
  Result timed = Tokenize({json, "--time", "--add-bos"}, "Hello world");
  EXPECT_EQ(ParseIds(timed.out).at(0), 128000);
  EXPECT_TRUE(Contains(timed.err, "MB/s")) << timed.err;
}

//===----------------------------------------------------------------------===//
// bitnet-generate with a model's tokenizer
//===----------------------------------------------------------------------===//

class GenerateTest : public ::testing::Test {
protected:
  void SetUp() override {
    bitnet_model *m = nullptr;
    ASSERT_TRUE(IsOk(bitnet_model_load(kModel, &m)));
    ModelPtr model(m);
    script_ = bitnet_model_metadata(m, "test.script");
    bitnet_tokenizer *t = nullptr;
    ASSERT_TRUE(IsOk(bitnet_tokenizer_create_from_model(m, &t)));
    int32_t *ids = nullptr;
    ASSERT_TRUE(IsOk(bitnet_tokenizer_encode(t, "Hi", 2, BITNET_ENCODE_ADD_BOS,
                                             &ids, &prompt_tokens_)));
    free(ids);
    bitnet_tokenizer_free(t);
  }

  // What the model writes after a prompt of prompt_tokens_ tokens: the
  // script from the byte at the last prompt position on.
  std::string Continuation() const {
    return script_.substr(static_cast<size_t>(prompt_tokens_) - 1);
  }

  std::string script_;
  int64_t prompt_tokens_ = 0;
};

TEST_F(GenerateTest, EncodesThePromptAndStreamsTheText) {
  Result r = Generate({kModel, "--prompt", "Hi", "--temperature", "0",
                       "--threads", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The prompt comes back without its BOS; the generated bytes, some of them
  // halves of characters, come out as whole characters.
  EXPECT_EQ(r.out, "Hi" + Continuation() + "\n");
  EXPECT_TRUE(Contains(r.err, "stopped at the end-of-sequence token")) << r.err;
  EXPECT_TRUE(Contains(r.err, "prompt: 2 tokens")) << r.err;
}

TEST_F(GenerateTest, StopsAtTheEndOfTurn) {
  Result r = Generate({BITNET_TEST_MODEL_TOKENIZER_DECODER_EOT, "--prompt",
                       "Hi", "--temperature", "0", "--threads", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hi" + Continuation() + "\n");
  EXPECT_TRUE(Contains(r.err, "stopped at the end-of-turn token")) << r.err;
}

TEST_F(GenerateTest, PrintsIdsWithTheEndToken) {
  Result r = Generate({kModel, "--prompt", "Hi", "--temperature", "0",
                       "--threads", "1", "--ids"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<int32_t> want = {257, 256};
  for (unsigned char c : Continuation())
    want.push_back(c);
  want.push_back(258);
  EXPECT_EQ(ParseIds(r.out), want);
}

TEST_F(GenerateTest, StopTextAndTokenLimit) {
  Result r = Generate({kModel, "--prompt", "Hi", "--temperature", "0",
                       "--threads", "1", "--stop", "se"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string c = Continuation();
  EXPECT_EQ(r.out, "Hi" + c.substr(0, c.find("se") + 2) + "\n");
  EXPECT_TRUE(Contains(r.err, "stopped at the stop text")) << r.err;
  // Three tokens: the last ends inside a character, which is printed as it
  // is at the end.
  r = Generate({kModel, "--prompt", "Hi", "--temperature", "0", "--threads",
                "1", "-n", "3", "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hi" + c.substr(0, 3) + "\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(GenerateTest, RefusesMeaninglessSamplingOptions) {
  for (const char *t : {"nan", "-nan", "inf", "-1"}) {
    Result r = Generate({kModel, "--prompt", "Hi", "--temperature", t});
    EXPECT_EQ(r.exit_code, 2) << t;
    EXPECT_TRUE(Contains(r.err, "--temperature needs a number in [0, 100], "
                                "got '" + std::string(t) + "'"))
        << r.err;
  }
  Result r = Generate({kModel, "--prompt", "Hi", "--top-p", "nan"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--top-p needs a number")) << r.err;
  r = Generate({kModel, "--prompt", "Hi", "--stop", ""});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--stop needs a non-empty string")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(GenerateTest, TokenizerErrors) {
  // The tokenizer is read even for a prompt given as ids.
  Result r = Generate({BITNET_TEST_MODEL_BROKEN_TOKENIZER, "--tokens", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "bitnet.tokenizer")) << r.err;
  EXPECT_TRUE(Contains(r.err, "'merges[0]'")) << r.err;
  // Ids are checked against the tokenizer's vocabulary.
  r = Generate({kModel, "--tokens", "1,260"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "vocabulary")) << r.err;
  // A prompt longer than the KV cache.
  r = Generate({kModel, "--prompt", std::string(100, 'x')});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "the prompt has 101 tokens")) << r.err;
  // Logits for fewer ids than the tokenizer has.
  r = Generate({BITNET_TEST_MODEL_SMALL_LOGITS, "--prompt", "Hi"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "has 260 tokens, the logits 200")) << r.err;
}

} // namespace
