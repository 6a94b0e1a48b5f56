//===- profiler_test.cc - Profiling hooks, table and Chrome trace ---------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace bitnet_test;

namespace {

//===- A small JSON reader, enough to check a trace's structure -----------===//

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  double number = 0;
  bool boolean = false;
  std::string string;
  std::vector<Json> items;
  std::map<std::string, Json> members;
};

class JsonParser {
public:
  explicit JsonParser(const std::string &text) : s_(text) {}

  bool Parse(Json &out) {
    if (!Value(out))
      return false;
    Space();
    return pos_ == s_.size();
  }

private:
  void Space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
  }
  bool Eat(char c) {
    Space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(const char *word) {
    size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0)
      return false;
    pos_ += n;
    return true;
  }
  bool Str(std::string &out) {
    if (!Eat('"'))
      return false;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (static_cast<unsigned char>(c) < 0x20)
        return false;
      if (c == '\\') {
        if (pos_ >= s_.size())
          return false;
        char e = s_[pos_++];
        if (e == 'u') {
          if (pos_ + 4 > s_.size())
            return false;
          out += static_cast<char>(std::stoi(s_.substr(pos_, 4), nullptr, 16));
          pos_ += 4;
        } else if (std::strchr("\"\\/bfnrt", e)) {
          out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else {
          return false;
        }
      } else {
        out += c;
      }
    }
    return Eat('"');
  }
  bool Value(Json &out) {
    Space();
    if (pos_ >= s_.size())
      return false;
    char c = s_[pos_];
    if (c == '{') {
      out.kind = Json::Object;
      ++pos_;
      if (Eat('}'))
        return true;
      do {
        std::string key;
        Json value;
        if (!Str(key) || !Eat(':') || !Value(value))
          return false;
        out.members[key] = std::move(value);
      } while (Eat(','));
      return Eat('}');
    }
    if (c == '[') {
      out.kind = Json::Array;
      ++pos_;
      if (Eat(']'))
        return true;
      do {
        Json value;
        if (!Value(value))
          return false;
        out.items.push_back(std::move(value));
      } while (Eat(','));
      return Eat(']');
    }
    if (c == '"') {
      out.kind = Json::String;
      return Str(out.string);
    }
    if (Literal("true") || Literal("false")) {
      out.kind = Json::Bool;
      out.boolean = s_[pos_ - 1] == 'e' && s_[pos_ - 2] == 'u';
      return true;
    }
    if (Literal("null"))
      return true;
    size_t end = pos_;
    while (end < s_.size() && std::strchr("+-0123456789.eE", s_[end]))
      ++end;
    if (end == pos_)
      return false;
    out.kind = Json::Number;
    out.number = std::stod(s_.substr(pos_, end - pos_));
    pos_ = end;
    return true;
  }

  const std::string &s_;
  size_t pos_ = 0;
};

//===- Tests ---------------------------------------------------------------===//

struct Fixture {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_PARALLEL);
  std::vector<float> x = std::vector<float>(1000, 2.0f), y = x, z = x;
  int32_t seen[4] = {};
  const void *inputs[1] = {x.data()};
  void *outputs[3] = {y.data(), z.data(), seen};
};

CollectorPtr MakeCollector(int64_t max_events = 0) {
  bitnet_profile_collector *c = nullptr;
  EXPECT_TRUE(IsOk(bitnet_profile_collector_create(max_events, &c)));
  return CollectorPtr(c);
}

// Tests that profiling is off by default and that turning it on hands the
// model kernel hooks that reach the profiler, in order, with bytes and flops.
TEST(ProfilerTest, CallbacksReachTheProfiler) {
  Fixture f;
  bitnet_context *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_context_create(f.model.get(), nullptr, &raw)));
  ContextPtr ctx(raw);
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), f.inputs, 1, f.outputs, 3)));
  EXPECT_EQ(f.seen[0], 0) << "kernel_begin must be NULL when profiling is off";
  EXPECT_EQ(f.seen[1], 0);

  struct Log {
    std::vector<std::string> lines;
  } log;
  bitnet_profiler p = {};
  p.user = &log;
  p.run_begin = [](void *u, const char *m) {
    static_cast<Log *>(u)->lines.push_back(std::string("run_begin ") + m);
  };
  p.run_end = [](void *u, const char *m, int32_t r) {
    static_cast<Log *>(u)->lines.push_back(std::string("run_end ") + m + " " +
                                           std::to_string(r));
  };
  p.kernel_begin = [](void *u, const char *k, int64_t bytes, int64_t flops) {
    static_cast<Log *>(u)->lines.push_back(std::string("begin ") + k + " " +
                                           std::to_string(bytes) + " " +
                                           std::to_string(flops));
  };
  p.kernel_end = [](void *u, const char *k) {
    static_cast<Log *>(u)->lines.push_back(std::string("end ") + k);
  };
  ASSERT_TRUE(IsOk(bitnet_context_set_profiler(ctx.get(), &p)));
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), f.inputs, 1, f.outputs, 3)));
  EXPECT_EQ(f.seen[0], 1);
  EXPECT_EQ(f.seen[1], 1);
  std::vector<std::string> expected = {
      "run_begin parallel", "begin scale 8000 1000", "end scale",
      "begin shift 8000 1000", "end shift", "run_end parallel 0"};
  EXPECT_EQ(log.lines, expected);

  // Off again: no hooks, nothing logged.
  ASSERT_TRUE(IsOk(bitnet_context_set_profiler(ctx.get(), nullptr)));
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), f.inputs, 1, f.outputs, 3)));
  EXPECT_EQ(f.seen[0], 0);
  EXPECT_EQ(log.lines.size(), expected.size());
}

// Tests that a profiler with only run callbacks leaves the kernel hooks NULL.
TEST(ProfilerTest, PartialProfiler) {
  Fixture f;
  int runs = 0;
  bitnet_profiler p = {};
  p.user = &runs;
  p.run_end = [](void *u, const char *, int32_t) { ++*static_cast<int *>(u); };
  bitnet_context_options options = {};
  options.profiler = &p;
  bitnet_context *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_context_create(f.model.get(), &options, &raw)));
  ContextPtr ctx(raw);
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), f.inputs, 1, f.outputs, 3)));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(f.seen[0], 0);
  EXPECT_EQ(f.seen[1], 0);
}

// Tests the collector's statistics, its table and its Chrome trace.
TEST(ProfilerTest, CollectorTableAndTrace) {
  Fixture f;
  CollectorPtr collector = MakeCollector();
  bitnet_profiler p = bitnet_profile_collector_profiler(collector.get());
  bitnet_context_options options = {};
  options.profiler = &p;
  bitnet_context *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_context_create(f.model.get(), &options, &raw)));
  ContextPtr ctx(raw);
  constexpr int kRuns = 5;
  for (int r = 0; r < kRuns; ++r)
    ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), f.inputs, 1, f.outputs, 3)));

  ASSERT_EQ(bitnet_profile_collector_num_kernels(collector.get()), 2);
  bitnet_kernel_stats st;
  ASSERT_TRUE(IsOk(bitnet_profile_collector_kernel(collector.get(), 0, &st)));
  EXPECT_STREQ(st.name, "scale");
  EXPECT_EQ(st.calls, kRuns);
  EXPECT_EQ(st.bytes, kRuns * 8000);
  EXPECT_EQ(st.flops, kRuns * 1000);
  EXPECT_GT(st.total_ns, 0);
  EXPECT_LE(st.min_ns, st.max_ns);
  EXPECT_LE(st.max_ns, st.total_ns);
  ASSERT_TRUE(IsOk(bitnet_profile_collector_kernel(collector.get(), 1, &st)));
  EXPECT_STREQ(st.name, "shift");
  EXPECT_TRUE(IsError(bitnet_profile_collector_kernel(collector.get(), 2, &st),
                      BITNET_STATUS_INVALID_ARGUMENT, {"2 kernels"}));
  int64_t runs = 0, run_ns = 0;
  ASSERT_TRUE(IsOk(bitnet_profile_collector_runs(collector.get(), &runs, &run_ns)));
  EXPECT_EQ(runs, kRuns);
  EXPECT_GT(run_ns, 0);

  // The table: a header and one row per kernel with its call count.
  std::string dir = MakeTempDir();
  std::string table_path = dir + "/table.txt";
  FILE *table = fopen(table_path.c_str(), "w");
  ASSERT_NE(table, nullptr);
  ASSERT_TRUE(IsOk(bitnet_profile_collector_write_table(collector.get(), table)));
  fclose(table);
  std::string text = ReadFile(table_path);
  for (const char *column : {"kernel", "calls", "total ms", "mean us", "GB/s",
                             "GFLOP/s"})
    EXPECT_NE(text.find(column), std::string::npos) << column << "\n" << text;
  for (const char *kernel : {"scale", "shift"}) {
    size_t row = text.find(std::string("\n") + kernel);
    ASSERT_NE(row, std::string::npos) << text;
    long long calls = 0;
    ASSERT_EQ(std::sscanf(text.c_str() + row + 1 + std::strlen(kernel), "%lld",
                          &calls),
              1);
    EXPECT_EQ(calls, kRuns);
  }
  EXPECT_NE(text.find("5 runs"), std::string::npos) << text;

  // The trace: valid JSON; one complete event per kernel call and run.
  std::string trace_path = dir + "/trace.json";
  ASSERT_TRUE(IsOk(bitnet_profile_collector_write_trace(collector.get(),
                                                        trace_path.c_str())));
  Json root;
  std::string json = ReadFile(trace_path);
  ASSERT_TRUE(JsonParser(json).Parse(root)) << json;
  ASSERT_EQ(root.kind, Json::Object);
  ASSERT_EQ(root.members.count("traceEvents"), 1u);
  const Json &events = root.members["traceEvents"];
  ASSERT_EQ(events.kind, Json::Array);
  std::map<std::string, int> complete;
  double last_run_end = -1;
  for (const Json &ev : events.items) {
    ASSERT_EQ(ev.kind, Json::Object);
    for (const char *key : {"name", "ph", "pid", "tid"})
      ASSERT_EQ(ev.members.count(key), 1u) << key;
    if (ev.members.at("ph").string != "X")
      continue;
    ASSERT_EQ(ev.members.count("ts"), 1u);
    ASSERT_EQ(ev.members.count("dur"), 1u);
    EXPECT_EQ(ev.members.at("ts").kind, Json::Number);
    EXPECT_GE(ev.members.at("dur").number, 0);
    EXPECT_EQ(ev.members.at("pid").number, static_cast<double>(getpid()));
    const std::string &name = ev.members.at("name").string;
    ++complete[name];
    if (name == "scale") {
      EXPECT_EQ(ev.members.at("args").members.at("bytes").number, 8000);
      EXPECT_EQ(ev.members.at("args").members.at("flops").number, 1000);
    }
    if (name == "parallel") {
      // Runs follow each other.
      EXPECT_GE(ev.members.at("ts").number, last_run_end);
      last_run_end = ev.members.at("ts").number + ev.members.at("dur").number;
    }
  }
  EXPECT_EQ(complete["scale"], kRuns);
  EXPECT_EQ(complete["shift"], kRuns);
  EXPECT_EQ(complete["parallel"], kRuns);

  // Reset forgets everything.
  bitnet_profile_collector_reset(collector.get());
  EXPECT_EQ(bitnet_profile_collector_num_kernels(collector.get()), 0);
  ASSERT_TRUE(IsOk(bitnet_profile_collector_runs(collector.get(), &runs, nullptr)));
  EXPECT_EQ(runs, 0);
}

// Tests that names needing escapes give valid JSON, that the event limit
// drops events but keeps statistics, and that nesting is handled.
TEST(ProfilerTest, EscapesLimitsAndNesting) {
  CollectorPtr collector = MakeCollector(3);
  bitnet_profiler p = bitnet_profile_collector_profiler(collector.get());
  for (int i = 0; i < 4; ++i) {
    p.kernel_begin(p.user, "outer \"q\"\\\n", 10, 1);
    p.kernel_begin(p.user, "inner", 5, 0);
    p.kernel_end(p.user, "inner");
    p.kernel_end(p.user, "outer \"q\"\\\n");
  }
  p.kernel_end(p.user, "unbalanced"); // ignored
  ASSERT_EQ(bitnet_profile_collector_num_kernels(collector.get()), 2);
  bitnet_kernel_stats outer, inner;
  ASSERT_TRUE(IsOk(bitnet_profile_collector_kernel(collector.get(), 0, &outer)));
  ASSERT_TRUE(IsOk(bitnet_profile_collector_kernel(collector.get(), 1, &inner)));
  EXPECT_EQ(outer.calls, 4);
  EXPECT_EQ(inner.calls, 4);
  EXPECT_EQ(outer.bytes, 40);
  EXPECT_GE(outer.total_ns, inner.total_ns);

  std::string path = MakeTempDir() + "/trace.json";
  ASSERT_TRUE(IsOk(bitnet_profile_collector_write_trace(collector.get(), path.c_str())));
  Json root;
  std::string json = ReadFile(path);
  ASSERT_TRUE(JsonParser(json).Parse(root)) << json;
  int complete = 0;
  for (const Json &ev : root.members["traceEvents"].items)
    complete += ev.members.at("ph").string == "X";
  EXPECT_EQ(complete, 3);
  EXPECT_EQ(root.members["otherData"].members["dropped_events"].number, 5);
  EXPECT_NE(json.find("outer \\\"q\\\"\\\\\\u000a"), std::string::npos) << json;
}

// Tests the collector's argument checks.
TEST(ProfilerTest, BadArguments) {
  bitnet_profile_collector *c = nullptr;
  EXPECT_TRUE(IsError(bitnet_profile_collector_create(-1, &c),
                      BITNET_STATUS_INVALID_ARGUMENT, {"negative"}));
  EXPECT_TRUE(IsError(bitnet_profile_collector_create(0, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  CollectorPtr collector = MakeCollector();
  EXPECT_TRUE(IsError(
      bitnet_profile_collector_write_trace(collector.get(), "/nonexistent/t.json"),
      BITNET_STATUS_IO_ERROR, {"/nonexistent/t.json"}));
  EXPECT_TRUE(IsError(bitnet_profile_collector_write_table(collector.get(), nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_profile_collector_write_table(nullptr, stdout),
                      BITNET_STATUS_INVALID_ARGUMENT));
  bitnet_profiler none = bitnet_profile_collector_profiler(nullptr);
  EXPECT_EQ(none.kernel_begin, nullptr);
  EXPECT_EQ(bitnet_profile_collector_num_kernels(nullptr), 0);
  bitnet_profile_collector_free(nullptr);
  bitnet_profile_collector_reset(nullptr);
}

} // namespace
