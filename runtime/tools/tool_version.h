/*===- tool_version.h - What the runtime tools print for --version -*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TOOLS_TOOL_VERSION_H
#define BITNET_RT_TOOLS_TOOL_VERSION_H

#include <stdio.h>

#include "bitnet_rt/bitnet_rt.h"

#ifndef BITNET_RT_VERSION
#define BITNET_RT_VERSION "unknown"
#endif
#ifndef BITNET_RT_GIT_REVISION
#define BITNET_RT_GIT_REVISION "unknown"
#endif

/* "TOOL (bitnet-mlir) VERSION (git REV)", then the runtime library it runs
 * on (which may be another build than the tool's) and the model ABI the
 * tool loads. */
static inline void print_tool_version(const char *tool) {
  printf("%s (bitnet-mlir) %s (git %s)\n"
         "runtime library %s, model ABI %u\n",
         tool, BITNET_RT_VERSION, BITNET_RT_GIT_REVISION, bitnet_rt_version(),
         (unsigned)BITNET_MODEL_ABI_VERSION);
}

#endif /* BITNET_RT_TOOLS_TOOL_VERSION_H */
