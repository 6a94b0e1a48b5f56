//===- test_util.h - Helpers shared by the runtime tests --------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_RT_TESTS_TEST_UTIL_H
#define BITNET_RT_TESTS_TEST_UTIL_H

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char **environ;

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/tokenizer.h"
#include "bitnet_rt_test_paths.h"

namespace bitnet_test {

/// Success, or the status's code and message; frees the status.
inline ::testing::AssertionResult IsOk(bitnet_status status) {
  if (status == BITNET_OK)
    return ::testing::AssertionSuccess();
  auto result = ::testing::AssertionFailure()
                << bitnet_status_code_name(bitnet_status_get_code(status))
                << ": " << bitnet_status_message(status);
  bitnet_status_free(status);
  return result;
}

/// Success when `status` has `code` and its message contains every one of
/// `parts`; frees the status.
inline ::testing::AssertionResult
IsError(bitnet_status status, bitnet_status_code code,
        std::initializer_list<std::string> parts = {}) {
  if (status == BITNET_OK)
    return ::testing::AssertionFailure() << "expected an error, got OK";
  std::string message = bitnet_status_message(status);
  bitnet_status_code got = bitnet_status_get_code(status);
  bitnet_status_free(status);
  if (got != code)
    return ::testing::AssertionFailure()
           << "expected " << bitnet_status_code_name(code) << ", got "
           << bitnet_status_code_name(got) << ": " << message;
  for (const std::string &part : parts)
    if (message.find(part) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message '" << message << "' lacks '" << part << "'";
  return ::testing::AssertionSuccess() << message;
}

struct ModelDeleter {
  void operator()(bitnet_model *m) const { bitnet_model_release(m); }
};
struct ContextDeleter {
  void operator()(bitnet_context *c) const { bitnet_context_free(c); }
};
struct PoolDeleter {
  void operator()(bitnet_pool *p) const { bitnet_pool_release(p); }
};
struct ThreadPoolDeleter {
  void operator()(bitnet_thread_pool *p) const {
    bitnet_thread_pool_release(p);
  }
};
struct CollectorDeleter {
  void operator()(bitnet_profile_collector *c) const {
    bitnet_profile_collector_free(c);
  }
};
struct TokenizerDeleter {
  void operator()(bitnet_tokenizer *t) const { bitnet_tokenizer_free(t); }
};
struct StreamDeleter {
  void operator()(bitnet_stream_decoder *d) const {
    bitnet_stream_decoder_free(d);
  }
};
using ModelPtr = std::unique_ptr<bitnet_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<bitnet_context, ContextDeleter>;
using PoolPtr = std::unique_ptr<bitnet_pool, PoolDeleter>;
using ThreadPoolPtr = std::unique_ptr<bitnet_thread_pool, ThreadPoolDeleter>;
using CollectorPtr =
    std::unique_ptr<bitnet_profile_collector, CollectorDeleter>;
using TokenizerPtr = std::unique_ptr<bitnet_tokenizer, TokenizerDeleter>;
using StreamPtr = std::unique_ptr<bitnet_stream_decoder, StreamDeleter>;

/// `s` as a JSON string literal (quotes, backslashes and control characters
/// escaped), for tokenizer descriptions written by tests.
inline std::string Quote(const std::string &s) {
  std::string q = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      q += '\\';
      q += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      q += buf;
    } else {
      q += static_cast<char>(c);
    }
  }
  return q + "\"";
}

/// The integers of `text` (token ids), separated by white space.
inline std::vector<int32_t> ParseIds(const std::string &text) {
  std::istringstream words(text);
  std::vector<int32_t> ids;
  for (int32_t id; words >> id;)
    ids.push_back(id);
  return ids;
}

/// Loads a model that must load.
inline ModelPtr LoadModel(const char *path) {
  bitnet_model *model = nullptr;
  bitnet_status status = bitnet_model_load(path, &model);
  EXPECT_TRUE(IsOk(status)) << path;
  return ModelPtr(model);
}

/// The directories MakeTempDir made, removed with what they hold when the
/// process that made them exits (not in a child it forked).
class TempDirs {
public:
  ~TempDirs() {
    if (getpid() != owner_)
      return;
    for (const std::string &dir : dirs_) {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  }
  void add(std::string dir) { dirs_.push_back(std::move(dir)); }

private:
  pid_t owner_ = getpid();
  std::vector<std::string> dirs_;
};

inline TempDirs &MadeTempDirs() {
  static TempDirs dirs;
  return dirs;
}

/// A fresh empty directory under the test's temporary directory, removed
/// when the test program exits.
inline std::string MakeTempDir() {
  const char *base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") +
                     "/bitnet_rt_test_XXXXXX";
  char *dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  if (dir)
    MadeTempDirs().add(tmpl);
  return tmpl;
}

inline std::string ReadFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// This process's environment with PATH set to `path`.
inline std::vector<std::string> EnvironmentWithPath(const std::string &path) {
  std::vector<std::string> env;
  for (char **e = environ; *e; ++e)
    if (strncmp(*e, "PATH=", 5) != 0)
      env.push_back(*e);
  env.push_back("PATH=" + path);
  return env;
}

/// What a program run by RunProgram did.
struct Result {
  int exit_code = -1;
  std::string out; // stdout
  std::string err; // stderr
};

/// Runs `program` with `args` and `input` on its stdin, capturing its output;
/// in the environment `env` ("NAME=VALUE" each) when given, else in this
/// process's.
inline Result RunProgram(const char *program,
                         const std::vector<std::string> &args,
                         const std::string &input = "",
                         const std::vector<std::string> *env = nullptr) {
  std::string dir = MakeTempDir();
  std::string in_path = dir + "/stdin", out_path = dir + "/stdout",
              err_path = dir + "/stderr";
  std::ofstream(in_path, std::ios::binary) << input;
  std::vector<char *> argv;
  argv.push_back(const_cast<char *>(program));
  for (const std::string &a : args)
    argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char *> envp;
  if (env) {
    for (const std::string &e : *env)
      envp.push_back(const_cast<char *>(e.c_str()));
    envp.push_back(nullptr);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  Result result;
  int rc = posix_spawn(&pid, program, &actions, nullptr, argv.data(),
                       env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << program;
  if (rc != 0)
    return result;
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

} // namespace bitnet_test

#endif // BITNET_RT_TESTS_TEST_UTIL_H
