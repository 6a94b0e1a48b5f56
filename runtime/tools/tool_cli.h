/*===- tool_cli.h - Command-line helpers of the decoder tools ------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * What bitnet-generate and bitnet-perplexity share of their command lines:
 * usage errors (exit status 2, with a pointer to --help), numbers checked
 * against a range, and a clock. Messages start with the program's name
 * (program_invocation_short_name: the tools define _GNU_SOURCE).
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TOOLS_TOOL_CLI_H
#define BITNET_RT_TOOLS_TOOL_CLI_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The exit status of bad command-line usage. */
#define EXIT_USAGE 2

/* Ends the program with "TOOL: " and `msg` with `arg`, and a hint. */
static inline void usage_error(const char *msg, const char *arg) {
  fprintf(stderr, "%s: ", program_invocation_short_name);
  fprintf(stderr, msg, arg);
  fprintf(stderr, "\n(run %s --help for the options)\n",
          program_invocation_short_name);
  exit(EXIT_USAGE);
}

/* The number `text` of option `flag`, which must lie in [lo, hi]; a usage
 * error otherwise. */
static inline double parse_number(const char *flag, const char *text, double lo,
                                  double hi) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  /* Written so that NaN, which compares false with everything, is refused. */
  if (errno || end == text || *end != '\0' || !(v >= lo && v <= hi)) {
    fprintf(stderr, "%s: %s needs a number in [%g, %g], got '%s'\n",
            program_invocation_short_name, flag, lo, hi, text);
    exit(EXIT_USAGE);
  }
  return v;
}

/* Seconds on a monotonic clock. */
static inline double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif /* BITNET_RT_TOOLS_TOOL_CLI_H */
