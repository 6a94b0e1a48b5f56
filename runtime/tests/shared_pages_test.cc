//===- shared_pages_test.cc - Processes share a model's weights -----------===//
//
// Part of bitnet-mlir.
//
// Two processes that load the same model map its read-only data from the
// same file, so the kernel shares the pages: in /proc/PID/smaps the weights
// count as Shared_Clean in both. One process alone has them as private.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <csignal>
#include <fcntl.h>
#include <cstdio>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

using namespace bitnet_test;

namespace {

constexpr long kWeightKiB = 8 * 1024;

// A running helper process holding the weights model, with its stdin pipe.
struct Helper {
  pid_t pid = -1;
  int to_child = -1;

  bool Start() {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
      return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const char *argv[] = {BITNET_SHARED_PAGES_HELPER_PATH,
                          BITNET_TEST_MODEL_WEIGHTS, nullptr};
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr,
                         const_cast<char **>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    to_child = in[1];
    if (rc != 0) {
      close(out[0]);
      return false;
    }
    // Waits for "ready": the model is loaded and its weights touched.
    char buf[16] = {};
    ssize_t n = read(out[0], buf, sizeof(buf) - 1);
    close(out[0]);
    return n > 0 && std::string(buf).rfind("ready", 0) == 0;
  }

  int Stop() {
    if (to_child >= 0)
      close(to_child);
    to_child = -1;
    int status = 0;
    if (pid > 0)
      waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  ~Helper() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      Stop();
    }
  }
};

struct Usage {
  long rss_kib = 0, shared_clean_kib = 0, private_clean_kib = 0,
       anonymous_kib = 0;
};

// Sums the smaps figures of the mappings of the file with inode `inode`.
Usage MappedUsage(pid_t pid, ino_t inode) {
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  Usage usage;
  bool in_model = false;
  std::string line;
  while (std::getline(smaps, line)) {
    unsigned long long start, end, offset, ino;
    char perms[8], dev[16];
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu", &start, &end,
                    perms, &offset, dev, &ino) == 6) {
      in_model = ino == static_cast<unsigned long long>(inode);
      continue;
    }
    if (!in_model)
      continue;
    long kib = 0;
    if (std::sscanf(line.c_str(), "Rss: %ld kB", &kib) == 1)
      usage.rss_kib += kib;
    else if (std::sscanf(line.c_str(), "Shared_Clean: %ld kB", &kib) == 1)
      usage.shared_clean_kib += kib;
    else if (std::sscanf(line.c_str(), "Private_Clean: %ld kB", &kib) == 1)
      usage.private_clean_kib += kib;
    else if (std::sscanf(line.c_str(), "Anonymous: %ld kB", &kib) == 1)
      usage.anonymous_kib += kib;
  }
  return usage;
}

// Tests that the 8 MiB of weights are private to one process and become
// shared clean pages once a second process runs the same model.
TEST(SharedPagesTest, TwoProcessesShareTheWeights) {
  if (access("/proc/self/smaps", R_OK) != 0)
    GTEST_SKIP() << "/proc/self/smaps is not available";
  struct stat st;
  ASSERT_EQ(stat(BITNET_TEST_MODEL_WEIGHTS, &st), 0);
  // A freshly linked file sits in the page cache as dirty pages until it is
  // written back, and smaps counts those as Shared_Dirty: write it back now.
  int fd = open(BITNET_TEST_MODEL_WEIGHTS, O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fsync(fd), 0);
  close(fd);

  Helper first;
  ASSERT_TRUE(first.Start());
  Usage alone = MappedUsage(first.pid, st.st_ino);
  EXPECT_GE(alone.rss_kib, kWeightKiB) << "the weights are resident";
  EXPECT_LT(alone.shared_clean_kib, kWeightKiB / 8)
      << "one process alone shares (almost) nothing";

  Helper second;
  ASSERT_TRUE(second.Start());
  for (pid_t pid : {first.pid, second.pid}) {
    Usage both = MappedUsage(pid, st.st_ino);
    EXPECT_GE(both.shared_clean_kib, kWeightKiB)
        << "pid " << pid << ": rss " << both.rss_kib << " KiB, private clean "
        << both.private_clean_kib << " KiB";
    EXPECT_LE(both.anonymous_kib, 16) << "no private copies of the weights";
  }
  EXPECT_EQ(second.Stop(), 0);
  EXPECT_EQ(first.Stop(), 0);
}

} // namespace
