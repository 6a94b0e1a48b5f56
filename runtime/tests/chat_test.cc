//===- chat_test.cc - Chat templates, and bitnet-generate --chat ----------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include "bitnet_rt/chat.h"
#include "bitnet_rt/tokenizer.h"
#include "chat_templates.h"

#include <cstring>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

using namespace bitnet_test;

namespace {

bool Contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

std::string Replace(std::string text, const std::string &from,
                    const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    text.replace(at, from.size(), to);
  return text;
}

struct TemplateDeleter {
  void operator()(bitnet_chat_template *t) const {
    bitnet_chat_template_free(t);
  }
};
using TemplatePtr = std::unique_ptr<bitnet_chat_template, TemplateDeleter>;

// The chat test models' tokenizer JSON (Llama 3's control tokens, BOS 257,
// add_bos_token true).
std::string ChatTokenizerJson() {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_CHAT_LLAMA3);
  const char *json = bitnet_model_metadata(model.get(), "bitnet.tokenizer");
  EXPECT_NE(json, nullptr);
  return json ? json : "";
}

TokenizerPtr MakeTokenizer(const std::string &json) {
  bitnet_tokenizer *t = nullptr;
  EXPECT_TRUE(IsOk(bitnet_tokenizer_create(json.data(), json.size(), &t)));
  return TokenizerPtr(t);
}

class ChatTemplateTest : public ::testing::Test {
protected:
  void SetUp() override { tok_ = MakeTokenizer(ChatTokenizerJson()); }

  TemplatePtr Make(const std::string &source,
                   const bitnet_tokenizer *tok = nullptr) {
    bitnet_chat_template *t = nullptr;
    EXPECT_TRUE(IsOk(bitnet_chat_template_create(
        source.c_str(), tok ? tok : tok_.get(), &t)))
        << source;
    return TemplatePtr(t);
  }

  static std::string Apply(const bitnet_chat_template *t,
                           const std::vector<bitnet_chat_message> &messages,
                           int32_t flags = BITNET_CHAT_ADD_GENERATION_PROMPT) {
    char *text = nullptr;
    size_t len = 0;
    EXPECT_TRUE(IsOk(bitnet_chat_template_apply(
        t, messages.data(), static_cast<int64_t>(messages.size()), flags,
        &text, &len)));
    std::string result(text ? text : "", len);
    EXPECT_EQ(strlen(text ? text : ""), len);
    free(text);
    return result;
  }

  TokenizerPtr tok_;
};

const std::vector<bitnet_chat_message> kConversation = {
    {"system", "Be brief."}, {"user", "  Hi there \n"}};

TEST_F(ChatTemplateTest, BitNet) {
  TemplatePtr t = Make(TEST_TEMPLATE_BITNET);
  EXPECT_STREQ(bitnet_chat_template_name(t.get()), "bitnet-b1.58");
  // No BOS in the template: the tokenizer's add_bos_token puts it first.
  EXPECT_EQ(Apply(t.get(), kConversation),
            "<|begin_of_text|>System: Be brief.<|eot_id|>User: Hi "
            "there<|eot_id|>Assistant: ");
  EXPECT_EQ(Apply(t.get(), {{"user", "Hi"}}, 0),
            "<|begin_of_text|>User: Hi<|eot_id|>");
  // A later turn closes the reply before it, and has no BOS.
  EXPECT_EQ(Apply(t.get(), {{"user", "again"}},
                  BITNET_CHAT_ADD_GENERATION_PROMPT | BITNET_CHAT_CONTINUE),
            "<|eot_id|>User: again<|eot_id|>Assistant: ");
  // Jinja's capitalize: the first letter upper case, the rest lower.
  EXPECT_EQ(Apply(t.get(), {{"ASSISTANT", "ok"}, {"tool", "x"}},
                  BITNET_CHAT_CONTINUE),
            "<|eot_id|>Assistant: ok<|eot_id|>Tool: x<|eot_id|>");
  // Without add_bos_token, no BOS.
  TokenizerPtr no_bos = MakeTokenizer(Replace(
      ChatTokenizerJson(), "\"add_bos_token\":true", "\"add_bos_token\":false"));
  TemplatePtr u = Make(TEST_TEMPLATE_BITNET, no_bos.get());
  EXPECT_EQ(Apply(u.get(), {{"user", "Hi"}}), "User: Hi<|eot_id|>Assistant: ");
}

TEST_F(ChatTemplateTest, Llama3) {
  TemplatePtr t = Make(TEST_TEMPLATE_LLAMA3);
  EXPECT_STREQ(bitnet_chat_template_name(t.get()), "llama-3");
  EXPECT_EQ(Apply(t.get(), kConversation),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            "Hi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
            "\n\n");
  EXPECT_EQ(Apply(t.get(), {{"user", "again"}},
                  BITNET_CHAT_ADD_GENERATION_PROMPT | BITNET_CHAT_CONTINUE),
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nagain"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // The bos_token goes before the first message: none without messages.
  EXPECT_EQ(Apply(t.get(), {}),
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // The BOS is in the text whatever add_bos_token says.
  TokenizerPtr no_bos = MakeTokenizer(Replace(
      ChatTokenizerJson(), "\"add_bos_token\":true", "\"add_bos_token\":false"));
  TemplatePtr u = Make(TEST_TEMPLATE_LLAMA3, no_bos.get());
  EXPECT_EQ(Apply(u.get(), {{"user", "Hi"}}, 0),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
            "Hi<|eot_id|>");
}

TEST_F(ChatTemplateTest, Llama3_1) {
  TemplatePtr t = Make(TEST_TEMPLATE_LLAMA3_1);
  EXPECT_STREQ(bitnet_chat_template_name(t.get()), "llama-3.1");
  const std::string header =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
      "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
  const std::string user_hi =
      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>";
  const std::string prompt =
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  // The system message goes in the system header, which is there without
  // one too.
  EXPECT_EQ(Apply(t.get(), kConversation),
            header + "Be brief.<|eot_id|>" + user_hi + prompt);
  EXPECT_EQ(Apply(t.get(), {kConversation[1]}),
            header + "<|eot_id|>" + user_hi + prompt);
  EXPECT_EQ(Apply(t.get(), {{"user", "again"}},
                  BITNET_CHAT_ADD_GENERATION_PROMPT | BITNET_CHAT_CONTINUE),
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nagain"
            "<|eot_id|>" +
                prompt);
  // Tool results: an ipython header, the content as it is.
  EXPECT_EQ(Apply(t.get(), {{"tool", " 42 "}}, BITNET_CHAT_CONTINUE),
            "<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n 42 "
            "<|eot_id|>");
}

// Llama 3.2's template takes today's date from strftime_now when there is
// one (Hugging Face and llama.cpp have it).
TEST_F(ChatTemplateTest, Llama3_2TodaysDate) {
  std::string source = Replace(
      TEST_TEMPLATE_LLAMA3_1, "{%- set date_string = \"26 Jul 2024\" %}",
      "{%- if strftime_now is defined %}\n"
      "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n"
      "    {%- else %}\n"
      "        {%- set date_string = \"26 Jul 2024\" %}\n"
      "    {%- endif %}");
  auto today = [] {
    char date[64];
    time_t now = time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d %b %Y", &tm);
    return std::string(date);
  };
  std::string before = today();
  TemplatePtr t = Make(source);
  std::string after = today();
  EXPECT_STREQ(bitnet_chat_template_name(t.get()), "llama-3.1");
  std::string text = Apply(t.get(), {{"user", "Hi"}});
  EXPECT_TRUE(Contains(text, "Today Date: " + before + "\n\n") ||
              Contains(text, "Today Date: " + after + "\n\n"))
      << text;
}

// Copies of a template that differ in white space, quotes, Jinja's
// whitespace control or message.role for message['role'] are the same
// template.
TEST_F(ChatTemplateTest, RecognisesRewrittenCopies) {
  TemplatePtr t = Make(
      "{{- bos_token }}\n{%- for message in messages %}\n    {{- "
      "\"<|start_header_id|>\" + message.role + \"<|end_header_id|>\\n\\n\" "
      "+ message.content|trim + \"<|eot_id|>\" }}\n{%- endfor %}\n{%- if "
      "add_generation_prompt %}\n    {{- "
      "\"<|start_header_id|>assistant<|end_header_id|>\\n\\n\" }}\n{%- endif "
      "%}\n");
  EXPECT_STREQ(bitnet_chat_template_name(t.get()), "llama-3");
  TemplatePtr u = Make(
      "{% for message in messages %}{{ message.role | capitalize + \": \" + "
      "message.content | trim + \"<|eot_id|>\" }}{% endfor %}\n{% if "
      "add_generation_prompt %}\n  {{ \"Assistant: \" }}\n{% endif %}");
  EXPECT_STREQ(bitnet_chat_template_name(u.get()), "bitnet-b1.58");
  // An older Llama 3 copy without trim leaves the content as it is.
  TemplatePtr v = Make(Replace(TEST_TEMPLATE_LLAMA3, "message['content'] | trim",
                               "message['content']"));
  EXPECT_EQ(Apply(v.get(), {{"user", " x "}}, 0),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n x "
            "<|eot_id|>");
}

TEST_F(ChatTemplateTest, TrimIsJinjas) {
  TemplatePtr t = Make(TEST_TEMPLATE_BITNET);
  // Python's white space, ASCII and Unicode (U+3000, U+00A0, U+2028); not
  // inside the text, and not a zero-width space (U+200B).
  EXPECT_EQ(Apply(t.get(), {{"user", "\t\xe3\x80\x80 a \n b\xc2\xa0\xe2\x80\xa8"}},
                  BITNET_CHAT_CONTINUE),
            "<|eot_id|>User: a \n b<|eot_id|>");
  EXPECT_EQ(Apply(t.get(), {{"user", "\xe2\x80\x8bx"}}, BITNET_CHAT_CONTINUE),
            "<|eot_id|>User: \xe2\x80\x8bx<|eot_id|>");
  EXPECT_EQ(Apply(t.get(), {{"user", " \n "}}, BITNET_CHAT_CONTINUE),
            "<|eot_id|>User: <|eot_id|>");
  // Bytes that are not UTF-8 are not white space.
  EXPECT_EQ(Apply(t.get(), {{"user", " \xff\xc2 "}}, BITNET_CHAT_CONTINUE),
            "<|eot_id|>User: \xff\xc2<|eot_id|>");
}

TEST_F(ChatTemplateTest, UnknownTemplatesNameTheKnownOnes) {
  const std::string llama3 = TEST_TEMPLATE_LLAMA3;
  for (const std::string &source : std::vector<std::string>{
           TEST_TEMPLATE_CHATML,
           "",
           "{{ messages[0]['content'] }}",
           // Llama 3 with one line break after the header: another format.
           Replace(llama3, "'<|end_header_id|>\n\n'+",
                   "'<|end_header_id|>\n'+"),
           // BitNet without its generation prompt.
           Replace(TEST_TEMPLATE_BITNET, "{{ 'Assistant: ' }}", ""),
           // Llama 3.1 without a date.
           Replace(TEST_TEMPLATE_LLAMA3_1, "set date_string", "set when"),
       }) {
    bitnet_chat_template *t = nullptr;
    EXPECT_TRUE(IsError(
        bitnet_chat_template_create(source.c_str(), tok_.get(), &t),
        BITNET_STATUS_UNAVAILABLE,
        {"not a chat template this runtime knows", "bitnet-b1.58", "llama-3",
         "llama-3.1"}))
        << source;
    EXPECT_EQ(t, nullptr);
  }
  EXPECT_TRUE(Contains(bitnet_chat_template_known(), "llama-3.1"));
}

TEST_F(ChatTemplateTest, BosMustBeAControlToken) {
  // BOS (257) as a normal token: its text would not encode to it.
  std::string json = ChatTokenizerJson();
  TokenizerPtr normal_bos =
      MakeTokenizer(Replace(json, "1,3,3,3,3,3]", "1,1,3,3,3,3]"));
  for (const char *source : {TEST_TEMPLATE_BITNET, TEST_TEMPLATE_LLAMA3}) {
    bitnet_chat_template *t = nullptr;
    EXPECT_TRUE(IsError(
        bitnet_chat_template_create(source, normal_bos.get(), &t),
        BITNET_STATUS_FAILED_PRECONDITION, {"BOS token (257", "control"}));
  }
  // BitNet without add_bos_token does not need it.
  TokenizerPtr no_bos = MakeTokenizer(
      Replace(Replace(json, "1,3,3,3,3,3]", "1,1,3,3,3,3]"),
              "\"add_bos_token\":true", "\"add_bos_token\":false"));
  Make(TEST_TEMPLATE_BITNET, no_bos.get());
}

TEST_F(ChatTemplateTest, BadArguments) {
  TemplatePtr t = Make(TEST_TEMPLATE_BITNET);
  bitnet_chat_template *out = nullptr;
  EXPECT_TRUE(IsError(bitnet_chat_template_create(nullptr, tok_.get(), &out),
                      BITNET_STATUS_INVALID_ARGUMENT, {"source"}));
  EXPECT_TRUE(IsError(bitnet_chat_template_create("x", nullptr, &out),
                      BITNET_STATUS_INVALID_ARGUMENT, {"tokenizer"}));
  EXPECT_TRUE(IsError(bitnet_chat_template_create("x", tok_.get(), nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  char *text = reinterpret_cast<char *>(1);
  size_t len = 1;
  bitnet_chat_message bad[] = {{"user", "x"}, {"user", nullptr}};
  EXPECT_TRUE(IsError(bitnet_chat_template_apply(t.get(), bad, 2, 0, &text,
                                                 &len),
                      BITNET_STATUS_INVALID_ARGUMENT, {"message 1", "content"}));
  EXPECT_EQ(text, nullptr);
  EXPECT_EQ(len, 0u);
  EXPECT_TRUE(IsError(bitnet_chat_template_apply(t.get(), bad, -1, 0, &text,
                                                 &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_chat_template_apply(t.get(), nullptr, 1, 0,
                                                 &text, &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_chat_template_apply(t.get(), bad, 1, 4, &text,
                                                 &len),
                      BITNET_STATUS_INVALID_ARGUMENT, {"flags"}));
  EXPECT_TRUE(IsError(bitnet_chat_template_apply(nullptr, bad, 1, 0, &text,
                                                 &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_STREQ(bitnet_chat_template_name(nullptr), "");
  bitnet_chat_template_free(nullptr);
}

TEST_F(ChatTemplateTest, FromModels) {
  struct Case {
    const char *path, *name;
  };
  for (const Case &c : {Case{BITNET_TEST_MODEL_CHAT_BITNET, "bitnet-b1.58"},
                        Case{BITNET_TEST_MODEL_CHAT_LLAMA3, "llama-3"},
                        Case{BITNET_TEST_MODEL_CHAT_LLAMA3_1, "llama-3.1"}}) {
    ModelPtr model = LoadModel(c.path);
    bitnet_chat_template *t = nullptr;
    ASSERT_TRUE(IsOk(
        bitnet_chat_template_create_from_model(model.get(), tok_.get(), &t)));
    EXPECT_STREQ(bitnet_chat_template_name(t), c.name);
    bitnet_chat_template_free(t);
  }
  ModelPtr none = LoadModel(BITNET_TEST_MODEL_TOKENIZER_DECODER);
  bitnet_chat_template *t = nullptr;
  EXPECT_TRUE(IsError(
      bitnet_chat_template_create_from_model(none.get(), tok_.get(), &t),
      BITNET_STATUS_NOT_FOUND,
      {"tokenizer_decoder.so", "no chat template", "bitnet.chat_template"}));
  ModelPtr unknown = LoadModel(BITNET_TEST_MODEL_CHAT_UNKNOWN);
  EXPECT_TRUE(IsError(
      bitnet_chat_template_create_from_model(unknown.get(), tok_.get(), &t),
      BITNET_STATUS_UNAVAILABLE,
      {"chat_unknown.so", "bitnet.chat_template", "<|im_start|>",
       "llama-3.1"}));
}

//===----------------------------------------------------------------------===//
// bitnet-generate --chat with the chat test models
//===----------------------------------------------------------------------===//

Result Generate(const std::vector<std::string> &args,
                const std::string &input = "") {
  return RunProgram(BITNET_GENERATE_PATH, args, input);
}

// The ids in a --trace-ids file, checking that each line's position
// follows the last.
std::vector<int32_t> TracedIds(const std::string &path) {
  std::istringstream lines(ReadFile(path));
  std::vector<int32_t> ids;
  for (std::string line; std::getline(lines, line);) {
    size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    EXPECT_EQ(std::stoll(line.substr(0, colon)),
              static_cast<long long>(ids.size()))
        << line;
    for (int32_t id : ParseIds(line.substr(colon + 1)))
      ids.push_back(id);
  }
  return ids;
}

// The ids of the test tokenizer for plain text: one per byte, but "Hi",
// its one merge.
std::vector<int32_t> Text(const std::string &text) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "Hi") == 0) {
      ids.push_back(256);
      ++i;
    } else {
      ids.push_back(static_cast<unsigned char>(text[i]));
    }
  }
  return ids;
}

enum : int32_t {
  kBos = 257,
  kEos = 258,
  kEot = 259,
  kStartHeader = 260,
  kEndHeader = 261,
};

class GenerateChatTest : public ::testing::Test {
protected:
  void SetUp() override {
    ModelPtr model = LoadModel(BITNET_TEST_MODEL_CHAT_BITNET);
    script_ = bitnet_model_metadata(model.get(), "test.script");
    trace_ = MakeTempDir() + "/trace";
  }

  // Runs a greedy conversation, tracing the ids.
  Result Chat(const char *model, const std::string &input,
              std::vector<std::string> more = {}) {
    std::vector<std::string> args = {model,   "--chat",      "--temperature",
                                     "0",     "--threads",   "1",
                                     "--trace-ids", trace_};
    args.insert(args.end(), more.begin(), more.end());
    return Generate(args, input);
  }

  // `a` followed by each of `more`.
  static std::vector<int32_t>
  Join(std::initializer_list<std::vector<int32_t>> parts) {
    std::vector<int32_t> all;
    for (const std::vector<int32_t> &p : parts)
      all.insert(all.end(), p.begin(), p.end());
    return all;
  }

  std::string script_, trace_;
};

TEST_F(GenerateChatTest, HelpDescribesChat) {
  Result r = Generate({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char *part : {"--chat", "--system", "bitnet.chat_template",
                           "Llama 3", "--trace-ids"})
    EXPECT_TRUE(Contains(r.out, part)) << part;
}

// Two turns of the BitNet b1.58 template: the second follows the first
// reply and its end of turn in the KV cache.
TEST_F(GenerateChatTest, BitNetTwoTurns) {
  Result r = Chat(BITNET_TEST_MODEL_CHAT_BITNET, "Hi\nagain\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, script_ + "\n" + script_ + "\n");
  EXPECT_TRUE(Contains(r.err, "turns: 2")) << r.err;
  EXPECT_TRUE(Contains(r.err, "stopped at the end-of-turn token")) << r.err;
  std::vector<int32_t> reply = Text(script_);
  EXPECT_EQ(TracedIds(trace_),
            Join({{kBos}, Text("User: Hi"), {kEot}, Text("Assistant: "),
                  reply, {kEot}, Text("User: again"), {kEot},
                  Text("Assistant: "), reply}));
}

// A reply that ends with EOS is closed with the template's end of turn,
// not with the EOS.
TEST_F(GenerateChatTest, EndOfSequenceEndsAReplyToo) {
  Result r = Chat(BITNET_TEST_MODEL_CHAT_BITNET_EOS, "Hi\nagain\n",
                  {"--system", "Be brief."});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, script_ + "\n" + script_ + "\n");
  EXPECT_TRUE(Contains(r.err, "stopped at the end-of-sequence token")) << r.err;
  std::vector<int32_t> reply = Text(script_);
  EXPECT_EQ(TracedIds(trace_),
            Join({{kBos}, Text("System: Be brief."), {kEot}, Text("User: Hi"),
                  {kEot}, Text("Assistant: "), reply, {kEot},
                  Text("User: again"), {kEot}, Text("Assistant: "), reply}));
}

TEST_F(GenerateChatTest, Llama3TwoTurns) {
  Result r = Chat(BITNET_TEST_MODEL_CHAT_LLAMA3, "Hi\n\n  \nagain\n",
                  {"--system", "Be brief."});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Blank lines are no turn.
  EXPECT_EQ(r.out, script_ + "\n" + script_ + "\n");
  std::vector<int32_t> reply = Text(script_);
  auto header = [](const char *role) {
    return Join({{kStartHeader}, Text(role), {kEndHeader}, Text("\n\n")});
  };
  // One BOS, from the template's text (not another from add_bos_token).
  EXPECT_EQ(TracedIds(trace_),
            Join({{kBos}, header("system"), Text("Be brief."), {kEot},
                  header("user"), Text("Hi"), {kEot}, header("assistant"),
                  reply, {kEot}, header("user"), Text("again"), {kEot},
                  header("assistant"), reply}));
}

TEST_F(GenerateChatTest, Llama3_1OneTurnFromPrompt) {
  // --prompt: one turn, stdin unread.
  Result r = Chat(BITNET_TEST_MODEL_CHAT_LLAMA3_1, "not read\n",
                  {"--prompt", "Hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, script_ + "\n");
  EXPECT_TRUE(Contains(r.err, "turns: 1")) << r.err;
  auto header = [](const char *role) {
    return Join({{kStartHeader}, Text(role), {kEndHeader}, Text("\n\n")});
  };
  EXPECT_EQ(TracedIds(trace_),
            Join({{kBos}, header("system"),
                  Text("Cutting Knowledge Date: December 2023\nToday Date: "
                       "26 Jul 2024\n\n"),
                  {kEot}, header("user"), Text("Hi"), {kEot},
                  header("assistant"), Text(script_)}));
}

TEST_F(GenerateChatTest, PrintsEachRepliesIds) {
  Result r = Chat(BITNET_TEST_MODEL_CHAT_BITNET, "Hi\nagain\n", {"--ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int32_t> line = Join({Text(script_), {kEot}});
  std::istringstream lines(r.out);
  std::string first, second, third;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(ParseIds(first), line);
  EXPECT_EQ(ParseIds(second), line);
  EXPECT_FALSE(std::getline(lines, third));
}

// A reply cut short by -n or --stop is still part of the conversation:
// its last token, not run yet, goes first in the next turn.
TEST_F(GenerateChatTest, RepliesCutShort) {
  Result r = Chat(BITNET_TEST_MODEL_CHAT_BITNET, "Hi\nagain\n", {"-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Three bytes: "_" and the two of "¡".
  EXPECT_EQ(r.out, script_.substr(0, 3) + "\n" + script_.substr(0, 3) + "\n");
  EXPECT_TRUE(Contains(r.err, "stopped at the -n limit")) << r.err;
  std::vector<int32_t> reply = Text(script_.substr(0, 3));
  EXPECT_EQ(TracedIds(trace_),
            Join({{kBos}, Text("User: Hi"), {kEot}, Text("Assistant: "),
                  reply, {kEot}, Text("User: again"), {kEot},
                  Text("Assistant: "), {reply[0], reply[1]}}));

  r = Chat(BITNET_TEST_MODEL_CHAT_BITNET, "Hi\nagain\n", {"--stop", "Hola"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string cut = script_.substr(0, script_.find("Hola") + 4);
  EXPECT_EQ(r.out, cut + "\n" + cut + "\n");
  reply = Text(cut);
  EXPECT_EQ(TracedIds(trace_),
            Join({{kBos}, Text("User: Hi"), {kEot}, Text("Assistant: "),
                  reply, {kEot}, Text("User: again"), {kEot},
                  Text("Assistant: "),
                  std::vector<int32_t>(reply.begin(), reply.end() - 1)}));
}

TEST_F(GenerateChatTest, ConversationLongerThanTheCache) {
  std::string input;
  for (int i = 0; i < 10; ++i)
    input += "Hi\n";
  Result r = Chat(BITNET_TEST_MODEL_CHAT_BITNET, input, {"--no-context-shift"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "the conversation has")) << r.err;
  EXPECT_TRUE(Contains(r.err, "KV cache holds 256")) << r.err;
  // The turns that fit were answered.
  EXPECT_TRUE(Contains(r.out, script_ + "\n" + script_ + "\n")) << r.out;
}

// Tests that, by default, the earliest turns make room for the next ones:
// every message is answered, and each shift runs the kept tokens again from
// position 0, the BOS token first.
TEST_F(GenerateChatTest, ConversationShiftsPastTheCache) {
  std::string input, want;
  for (int i = 0; i < 10; ++i) {
    input += "Hi\n";
    want += script_ + "\n";
  }
  Result r = Chat(BITNET_TEST_MODEL_CHAT_BITNET, input);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, want);
  EXPECT_TRUE(Contains(r.err, "context shift")) << r.err;
  std::istringstream lines(ReadFile(trace_));
  int starts = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("0: ", 0) == 0) {
      ++starts;
      EXPECT_EQ(line, "0: 257"); // <|begin_of_text|>, one token a run
    }
  EXPECT_GE(starts, 2);
}

TEST_F(GenerateChatTest, TemplateAndTokenizerErrors) {
  // A template it does not know: an error naming the ones it knows.
  Result r = Chat(BITNET_TEST_MODEL_CHAT_UNKNOWN, "Hi\n");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  for (const char *part :
       {"chat_unknown.so", "bitnet.chat_template", "not a chat template",
        "bitnet-b1.58", "llama-3", "llama-3.1"})
    EXPECT_TRUE(Contains(r.err, part)) << r.err << " lacks " << part;
  // No template.
  r = Chat(BITNET_TEST_MODEL_TOKENIZER_DECODER, "Hi\n");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(Contains(r.err, "no chat template")) << r.err;
  EXPECT_TRUE(Contains(r.err, "llama-3.1")) << r.err;
  // No tokenizer.
  r = Chat(BITNET_TEST_MODEL_CHAT_NO_TOKENIZER, "Hi\n");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "--chat needs the model's tokenizer")) << r.err;
  // Usage.
  r = Generate({BITNET_TEST_MODEL_CHAT_BITNET, "--chat", "--tokens", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "--tokens is not for --chat")) << r.err;
  r = Generate({BITNET_TEST_MODEL_CHAT_BITNET, "--system", "x", "--prompt",
                "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "--system is for --chat")) << r.err;
}

// Without --chat a chat model takes its prompt as it is.
TEST_F(GenerateChatTest, PlainPromptIgnoresTheTemplate) {
  Result r = Generate({BITNET_TEST_MODEL_CHAT_BITNET, "--prompt", "Hi",
                       "--temperature", "0", "--threads", "1", "-n", "1",
                       "--quiet", "--trace-ids", trace_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(TracedIds(trace_), (std::vector<int32_t>{kBos, 256}));
}

} // namespace
