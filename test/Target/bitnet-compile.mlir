// RUN: rm -rf %t && split-file --leading-lines %s %t

//===----------------------------------------------------------------------===//
// --emit=mlir and its stages
//===----------------------------------------------------------------------===//

// RUN: bitnet-compile %t/model.mlir --emit=mlir | FileCheck %s --check-prefix=INPUT
// RUN: bitnet-compile %t/model.mlir --emit=mlir --mlir-stage=input -o %t/input.mlir
// RUN: FileCheck %s --check-prefix=INPUT --input-file=%t/input.mlir
// RUN: bitnet-compile - --emit=mlir < %t/model.mlir | FileCheck %s --check-prefix=INPUT

// Tests that the input stage is the canonicalised model: the latent weights
// are ternarised and packed at compile time.
// INPUT-LABEL: func.func @bitlinear
// INPUT-DAG: arith.constant dense<0.4453125> : tensor<f32>
// INPUT-DAG: bitnet.constant dense<{{\[\[}}-110, 24], [41, 101], [85, 85], [10, 34]]> : tensor<4x2xi8> -> !bitnet.ternary<4x8, i2>
// INPUT-NOT: bitnet.ternarize
// INPUT-NOT: bitnet.pack
// INPUT: bitnet.bitlinear

// RUN: bitnet-compile %t/model.mlir --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=LINALG

// Tests that the linalg stage has no bitnet op left and still works on
// tensors.
// LINALG-LABEL: func.func @bitlinear
// LINALG-SAME: tensor<2x8xf32>
// LINALG-NOT: {{= bitnet\.}}
// LINALG: return %{{.*}} : tensor<2x4xf32>

// RUN: bitnet-compile %t/model.mlir --emit=mlir --mlir-stage=bufferized | FileCheck %s --check-prefix=BUFFERIZED

// Tests that the bufferized stage takes the output as an out-parameter and
// has a planned workspace.
// BUFFERIZED-LABEL: func.func @bitlinear
// BUFFERIZED-SAME: memref<2x8xf32> {bitnet.name = "x"}
// BUFFERIZED-SAME: memref<2x4xf32> {bufferize.result}
// BUFFERIZED-SAME: bitnet.workspace_bytes =
// BUFFERIZED-NOT: tensor<

// RUN: bitnet-compile %t/model.mlir --emit=mlir --mlir-stage=llvm | FileCheck %s --check-prefix=LLVMDIALECT

// Tests that the llvm stage is in the llvm dialect with both ABI symbols.
// LLVMDIALECT-NOT: func.func
// LLVMDIALECT: llvm.mlir.global external constant @bitnet_model_info()
// LLVMDIALECT: llvm.func @bitnet_model_run(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) -> i32
// LLVMDIALECT-NOT: func.func

//===----------------------------------------------------------------------===//
// --emit=llvm
//===----------------------------------------------------------------------===//

// RUN: bitnet-compile %t/model.mlir --emit=llvm | FileCheck %s --check-prefix=LLVMIR
// RUN: bitnet-compile %t/model.mlir --emit=llvm --opt-level=0 | FileCheck %s --check-prefixes=LLVMIR,LLVMIR0

// Tests that LLVM IR defines the two ABI symbols with external linkage and
// keeps everything else internal: at -O0 the entry function survives as an
// internal function.
// LLVMIR: target triple =
// LLVMIR: @bitnet_model_info = {{(local_unnamed_addr )?}}constant { i32, i32, ptr, ptr, ptr, i32, i32, ptr, ptr, i64, i64, ptr, i32, ptr, ptr, i32, ptr, i64, i32, ptr } { i32 1296979010, i32 7,
// LLVMIR0: define internal void @bitlinear(
// LLVMIR: define {{.*}}i32 @bitnet_model_run(ptr {{.*}}, ptr {{.*}}, ptr {{.*}})

// RUN: bitnet-compile %t/model.mlir --emit=llvm | FileCheck %s --check-prefix=TLS
// Tests that the kernels' execution context is an initial-exec thread-local
// (a load from the thread pointer): a __tls_get_addr call may clobber the
// xmm16-31 that LLVM keeps values in across it.
// TLS: @__bitnet_exec_ctx = internal thread_local(initialexec)

// RUN: bitnet-compile %t/model.mlir --emit=llvm --target=aarch64-linux-gnu --cpu=neoverse-v1 | FileCheck %s --check-prefix=AARCH64IR

// Tests that the target triple and CPU are those asked for, in the module
// and in the descriptor.
// AARCH64IR: target triple = "aarch64-unknown-linux-gnu"
// AARCH64IR: c"aarch64-unknown-linux-gnu neoverse-v1\00"
// AARCH64IR: define {{.*}}i32 @bitnet_model_run(
// AARCH64IR: "target-cpu"="neoverse-v1"

//===----------------------------------------------------------------------===//
// --emit=obj and --emit=so
//===----------------------------------------------------------------------===//

// RUN: bitnet-compile %t/model.mlir --emit=obj -o %t/model.o
// RUN: llvm-nm %t/model.o | FileCheck %s --check-prefix=OBJSYMS
// RUN: llvm-objdump -t %t/model.o | FileCheck %s --check-prefix=OBJTABLE

// Tests that the object file defines the descriptor as data and the run
// function as code, both global, and nothing else global.
// OBJSYMS-DAG: {{^[0-9a-f]+}} D bitnet_model_info
// OBJSYMS-DAG: {{^[0-9a-f]+}} T bitnet_model_run
// OBJSYMS-NOT: {{^[0-9a-f]+}} {{[A-Z]}} bitlinear
// OBJTABLE: SYMBOL TABLE:
// OBJTABLE-DAG: g {{.*}} bitnet_model_info
// OBJTABLE-DAG: g {{.*}}F .text{{.*}} bitnet_model_run

// RUN: cd %t && bitnet-compile model.mlir --emit=obj && llvm-nm model.o | FileCheck %s --check-prefix=DEFAULTNAME

// Tests that without -o an object file is named after the input.
// DEFAULTNAME: T bitnet_model_run

// RUN: bitnet-compile %t/model.mlir --emit=so -o %t/model.so
// RUN: llvm-nm -D --defined-only %t/model.so | FileCheck %s --check-prefix=SO
// RUN: llvm-nm -D --defined-only %t/model.so | count 2

// Tests that the shared object exports exactly the two ABI symbols.
// SO-DAG: D bitnet_model_info
// SO-DAG: T bitnet_model_run

// RUN: llvm-readelf -lW %t/model.so | FileCheck %s --check-prefix=ALIGN

// Tests that every loadable segment is aligned to 2 MiB, so that the loader
// maps the weights at addresses congruent to their file offsets modulo a
// huge page (the kernel can then map the file's 2 MiB folios whole).
// ALIGN: LOAD {{.*}} R 0x200000
// ALIGN: LOAD {{.*}} R E 0x200000
// ALIGN-NOT: LOAD {{.*}} 0x1000{{$}}

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --emit=obj -o %t/model-aarch64.o
// RUN: llvm-objdump -f %t/model-aarch64.o | FileCheck %s --check-prefix=AARCH64
// RUN: llvm-nm %t/model-aarch64.o | FileCheck %s --check-prefix=SO

// Tests that --target produces an object for another architecture.
// AARCH64: file format elf64-littleaarch64
// AARCH64: architecture: aarch64

// RUN: bitnet-compile %t/model.mlir --emit=so -v -o %t/verbose.so 2>&1 | FileCheck %s --check-prefix=VERBOSE

// Tests that -v names every stage.
// VERBOSE: bitnet-compile: lowering to linalg ... done
// VERBOSE: bitnet-compile: bufferizing ... done
// VERBOSE: bitnet-compile: lowering to the LLVM dialect ... done
// VERBOSE: bitnet-compile: optimising LLVM IR ... done
// VERBOSE: bitnet-compile: emitting the object file ... done
// VERBOSE: bitnet-compile: linking {{.*}}verbose.so ... done

// RUN: bitnet-compile %t/model.mlir --progress=always --progress-after-ms=0 -o %t/progress.so 2>&1 | FileCheck %s --check-prefix=PROGRESS
// RUN: bitnet-compile %t/model.mlir --progress=always --progress-after-ms=0 -q -o %t/quiet.so 2>&1 | count 0
// RUN: bitnet-compile %t/model.mlir -o %t/no-terminal.so 2>&1 | count 0
// RUN: not bitnet-compile %t/model.mlir -q -v -o %t/x.so 2>&1 | FileCheck %s --check-prefix=QUIET-VERBOSE

// Tests the progress a terminal shows: once a compile has run the given time
// (0 here; a second by default), each stage redrawn on one line and ended
// with its time, the model's reading among them; -q shows nothing, and
// neither does a compile whose stderr is not a terminal (without
// --progress=always).
// PROGRESS: bitnet-compile: reading {{.*}}model.mlir done ({{[0-9.]+}} s)
// PROGRESS: bitnet-compile: lowering to linalg done ({{[0-9.]+}} s)
// PROGRESS: bitnet-compile: linking {{.*}}progress.so done ({{[0-9.]+}} s)
// QUIET-VERBOSE: error: -q and -v exclude each other

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

// Tests that --version names the project's version and revision and the
// LLVM it is built on, and that --help lists this tool's options only
// (LLVM's own, e.g. its AMDGPU back end's, with --help-hidden).
// RUN: bitnet-compile --version | FileCheck %s --check-prefix=VERSION
// VERSION: bitnet-compile (bitnet-mlir) {{[0-9]+\.[0-9]+\.[0-9]+}} (git {{[0-9a-f]+|unknown}})
// VERSION-NEXT: LLVM and MLIR {{[0-9]+}}.
// RUN: bitnet-compile --help | FileCheck %s --check-prefix=HELP --implicit-check-not=amdgpu
// HELP: USAGE: bitnet-compile [options] <model.mlir | model.onnx | model.gguf | checkpoint-dir | ->
// HELP: --kv-cache=<value>
// HELP: =f16
// RUN: bitnet-compile --help-hidden | FileCheck %s --check-prefix=HIDDEN
// HIDDEN: {{^ *}}--amdgpu-
// HIDDEN: {{^ *}}--mlir-timing 

// Tests that an output that cannot be written is refused before the model
// is read or compiled.
// RUN: not bitnet-compile %t/model.mlir -o %t/no-such-dir/m.so 2>&1 | FileCheck %s --check-prefix=ERR-OUTDIR
// ERR-OUTDIR: bitnet-compile: error: cannot write '{{.*}}no-such-dir/m.so': no directory '{{.*}}no-such-dir'
// RUN: not bitnet-compile %t/model.mlir -o %t 2>&1 | FileCheck %s --check-prefix=ERR-OUTISDIR
// ERR-OUTISDIR: bitnet-compile: error: cannot write '{{.*}}': it is a directory

// Tests that a failed link leaves an existing output as it was and no
// temporary beside it: the shared object is linked under another name and
// renamed over the output only when complete.
// RUN: rm -rf %t/atomic && mkdir %t/atomic && echo previous > %t/atomic/m.so
// RUN: not bitnet-compile %t/model.mlir -o %t/atomic/m.so --linker=false 2>&1 | FileCheck %s --check-prefix=ERR-LINK
// ERR-LINK: error: linking failed
// RUN: cat %t/atomic/m.so | FileCheck %s --check-prefix=KEPT
// KEPT: previous
// RUN: ls %t/atomic | count 1

// Tests that a tensor over --max-tensor-bytes is refused at its op before
// anything folds or allocates it (a few hundred bytes declaring a terabyte
// splat), and an argument too; and that the limit can be lowered.
// RUN: not bitnet-compile %t/huge.mlir -o %t/huge.so 2>&1 | FileCheck %s --check-prefix=ERR-HUGE
// RUN: not bitnet-compile %t/model.mlir --max-tensor-bytes=16 -o %t/small.so 2>&1 | FileCheck %s --check-prefix=ERR-LIMIT
// RUN: not bitnet-compile %t/model.mlir --max-tensor-bytes=0 -o %t/small.so 2>&1 | FileCheck %s --check-prefix=ERR-ZERO
// ERR-LIMIT: error: argument #0 of @bitlinear is a 'tensor<2x8xf32>' of 64 bytes, over the limit of 16 bytes (--max-tensor-bytes)
// ERR-ZERO: error: --max-tensor-bytes must be > 0

// Tests that a CPU feature the target does not know is an error, not
// LLVM's warning and a build without it, and that a FIFO given as the model
// is refused instead of read forever.
// RUN: not bitnet-compile %t/model.mlir --features=+frobnicate -o %t/f.so 2>&1 | FileCheck %s --check-prefix=ERR-FEATURE
// ERR-FEATURE: error: unknown CPU feature 'frobnicate' for x86_64
// A feature that sets the mode or calling convention of the code, which LLVM
// cannot change under a model (it stopped the process with "LLVM ERROR"),
// is refused too.
// RUN: not bitnet-compile %t/model.mlir --target=x86_64-linux-gnu --features=-64bit -o %t/f.so 2>&1 | FileCheck %s --check-prefix=ERR-64BIT
// ERR-64BIT: error: CPU feature '64bit' cannot be disabled for x86_64-unknown-linux-gnu
// RUN: not bitnet-compile %t/model.mlir --target=x86_64-linux-gnu --features=+soft-float -o %t/f.so 2>&1 | FileCheck %s --check-prefix=ERR-SOFTFLOAT
// ERR-SOFTFLOAT: error: CPU feature 'soft-float' cannot be enabled for x86_64-unknown-linux-gnu
// RUN: rm -f %t/fifo.mlir && mkfifo %t/fifo.mlir
// RUN: not bitnet-compile %t/fifo.mlir -o %t/f.so 2>&1 | FileCheck %s --check-prefix=ERR-FIFO
// ERR-FIFO: error: cannot read '{{.*}}fifo.mlir': not a regular file

// RUN: not bitnet-compile %t/model.mlir --emit=foo 2>&1 | FileCheck %s --check-prefix=ERR-EMIT
// ERR-EMIT: bitnet-compile: error: unknown --emit=foo (expected mlir, llvm, obj, so, ptx or tokenizer)

// RUN: not bitnet-compile %t/model.mlir --emit=mlir --mlir-stage=loops 2>&1 | FileCheck %s --check-prefix=ERR-STAGE
// ERR-STAGE: bitnet-compile: error: unknown --mlir-stage=loops (expected input, linalg, bufferized or llvm)

// RUN: not bitnet-compile %t/model.mlir --emit=llvm --mlir-stage=linalg 2>&1 | FileCheck %s --check-prefix=ERR-STAGE-EMIT
// ERR-STAGE-EMIT: bitnet-compile: error: --mlir-stage needs --emit=mlir

// RUN: not bitnet-compile %t/model.mlir --opt-level=7 2>&1 | FileCheck %s --check-prefix=ERR-OPT
// ERR-OPT: bitnet-compile: error: --opt-level must be 0 to 3, got 7

// RUN: not bitnet-compile %t/model.mlir --emit=obj --target=foo-bar-baz -o %t/never.o 2>&1 | FileCheck %s --check-prefix=ERR-TARGET
// ERR-TARGET: bitnet-compile: error: unknown target 'foo-bar-baz'

// RUN: not bitnet-compile %t/model.mlir --emit=obj --target=aarch64-linux-gnu --cpu=pentium -o %t/never.o 2>&1 | FileCheck %s --check-prefix=ERR-CPU
// ERR-CPU: bitnet-compile: error: unknown CPU 'pentium' for aarch64-unknown-linux-gnu

// An unknown CPU for this machine's triple is refused before LLVM, which
// would only warn and then stop the process with a fatal error.
// RUN: not bitnet-compile %t/model.mlir --cpu=pentium9000 -o %t/never.so 2>&1 | FileCheck %s --check-prefix=ERR-HOST-CPU --implicit-check-not="LLVM ERROR"
// ERR-HOST-CPU: bitnet-compile: error: unknown CPU 'pentium9000' for

// RUN: not bitnet-compile %t/model.mlir --weight-format=i4 2>&1 | FileCheck %s --check-prefix=ERR-FORMAT
// ERR-FORMAT: for the --weight-format option: unknown value 'i4' (expected int8, i2 or base3)

// RUN: not bitnet-compile %t/missing.mlir --emit=mlir 2>&1 | FileCheck %s --check-prefix=ERR-MISSING
// ERR-MISSING: error: cannot open input file '{{.*}}missing.mlir': No such file or directory

// RUN: not bitnet-compile %t/model.txt --emit=mlir 2>&1 | FileCheck %s --check-prefix=ERR-SUFFIX
// ERR-SUFFIX: error: cannot read '{{.*}}model.txt': expected a .mlir, .onnx or .gguf file, a Hugging Face checkpoint directory, or - for standard input

// RUN: not bitnet-compile - --emit=obj < %t/model.mlir 2>&1 | FileCheck %s --check-prefix=ERR-STDIN
// ERR-STDIN: bitnet-compile: error: writing a binary phase needs -o when reading stdin

// RUN: not bitnet-compile %t/parse-error.mlir --emit=mlir 2>&1 | FileCheck %s --check-prefix=ERR-PARSE
// RUN: not bitnet-compile %t/invalid.mlir 2>&1 | FileCheck %s --check-prefix=ERR-VERIFY
// RUN: not bitnet-compile %t/dynamic.mlir --emit=obj -o %t/never.o 2>&1 | FileCheck %s --check-prefix=ERR-DYNAMIC

//--- model.mlir
func.func @bitlinear(%x: tensor<2x8xf32> {bitnet.name = "x"}) -> tensor<2x4xf32>
    attributes {bitnet.output_names = ["y"]} {
  %w = arith.constant dense<[[ 0.9, -0.4,  0.0,  1.2, -1.1,  0.3,  0.05, -0.8],
                             [-0.2,  0.7,  0.6, -0.9,  0.0,  0.0,  1.5,  0.1],
                             [ 0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0],
                             [ 1.0,  1.0, -1.0, -1.0,  0.5, -0.5,  0.25, -0.25]]> : tensor<4x8xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  %packed = bitnet.pack %wq : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  %y = bitnet.bitlinear %x, %packed scale %ws : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

//--- model.txt
This is not MLIR.

//--- parse-error.mlir
// Tests that a syntax error is reported at its line and column.
// ERR-PARSE: parse-error.mlir:[[@LINE+1]]:38: error: custom op 'func.func' expected SSA identifier
func.func @broken(%x: tensor<4xf32>, {
  return
}

//--- invalid.mlir
// Tests that a model that fails the verifier is reported at the op.
func.func @invalid(%x: tensor<2x7xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) -> tensor<2x4xf32> {
  // ERR-VERIFY: invalid.mlir:[[@LINE+1]]:8: error: 'bitnet.bitlinear' op input has 7 features but the weight '!bitnet.ternary<4x8, i2>' expects 8
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x7xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

//--- dynamic.mlir
// Tests that a model whose inputs have dynamic shapes, which the model ABI
// cannot describe, is rejected at the entry function.
// ERR-DYNAMIC: dynamic.mlir:[[@LINE+1]]:1: error: entry argument #0 must be a statically shaped memref with the identity layout, got 'memref<?x8xf32>'
func.func @dynamic(%x: tensor<?x8xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) -> tensor<?x4xf32> {
  %y = bitnet.bitlinear %x, %w scale %s : tensor<?x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

//--- huge.mlir
func.func @huge(%x: tensor<1x1048576xf32>) -> tensor<1x1048576xf32> {
  // ERR-HUGE: huge.mlir:[[@LINE+1]]:8: error: the result of 'arith.constant' is a 'tensor<1048576x1048576xi8>' of 1099511627776 bytes, over the limit of 34359738368 bytes (--max-tensor-bytes)
  %w = arith.constant dense<1> : tensor<1048576x1048576xi8>
  %p = bitnet.pack %w : tensor<1048576x1048576xi8> -> !bitnet.ternary<1048576x1048576, i2>
  %s = arith.constant dense<1.0> : tensor<f32>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<1x1048576xf32>, !bitnet.ternary<1048576x1048576, i2>, tensor<f32> -> tensor<1x1048576xf32>
  return %y : tensor<1x1048576xf32>
}
