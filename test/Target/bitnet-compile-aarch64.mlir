// RUN: rm -rf %t && split-file --leading-lines %s %t

//===----------------------------------------------------------------------===//
// AArch64 with the dot product extension: the NEON kernels
//===----------------------------------------------------------------------===//

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=AUTO
// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --features=+dotprod --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=AUTO
// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --kernels=neon --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=AUTO

// Tests that --kernels=auto picks the NEON family for an AArch64 CPU with
// the dot product extension (named, or added with --features), and that
// --kernels=neon names it.
// AUTO-LABEL: func.func @bitlinear
// AUTO:         arith.constant dense<{{.*}}> : tensor<384xi8>
// AUTO:         call @__bitnet_mad_neon_3x20x40_memref
// AUTO-SAME:      family = "mad", isa = "neon", rows_per_group = 16

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --emit=llvm | FileCheck %s --check-prefix=LLVMIR

// Tests that the LLVM IR calls sdot on 128-bit vectors and that the
// descriptor asks the loader for the dot product extension.
// LLVMIR: target triple = "aarch64-unknown-linux-gnu"
// LLVMIR: c"dotprod\00"
// LLVMIR: call <4 x i32> @llvm.aarch64.neon.sdot.v4i32.v16i8(

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --emit=obj -o %t/neon.o
// RUN: llvm-objdump -d --no-show-raw-insn %t/neon.o | FileCheck %s --check-prefix=ASM

// Tests that the object file's code is NEON with sdot.
// ASM: file format elf64-littleaarch64
// ASM: sdot v{{[0-9]+}}.4s, v{{[0-9]+}}.16b, v{{[0-9]+}}.{{16b|4b\[[0-3]\]}}

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --emit=so -o %t/neon.so
// RUN: llvm-readelf -h %t/neon.so | FileCheck %s --check-prefix=SO
// RUN: llvm-objdump -d --no-show-raw-insn %t/neon.so | FileCheck %s --check-prefix=ASM

// Tests that the kernels link into an AArch64 shared object (clang, lld).
// SO: Type: DYN (Shared object file)
// SO: Machine: AArch64

// RUN: llvm-readelf -lW %t/neon.so | FileCheck %s --check-prefix=ALIGN
// ALIGN: LOAD {{.*}} R 0x200000

//===----------------------------------------------------------------------===//
// AArch64 without it: the reference lowering
//===----------------------------------------------------------------------===//

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=GENERIC
// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --features=-dotprod --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=GENERIC
// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --kernels=reference --emit=mlir --mlir-stage=linalg | FileCheck %s --check-prefix=GENERIC

// Tests that a generic AArch64 CPU (no dot product extension), one with the
// extension turned off, and --kernels=reference keep the reference lowering.
// GENERIC-LABEL: func.func @bitlinear
// GENERIC-NOT:     __bitnet_mad
// GENERIC:         return

// RUN: bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --emit=llvm | FileCheck %s --check-prefix=GENERICIR

// Tests that such a build asks the loader for no CPU feature and has no sdot.
// GENERICIR-NOT: dotprod
// GENERICIR-NOT: sdot

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

// RUN: not bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --kernels=neon --emit=obj -o %t/never.o 2>&1 | FileCheck %s --check-prefix=ERR-NODOT
// ERR-NODOT: error: --kernels=neon needs a target with dotprod (this one is aarch64-unknown-linux-gnu generic)

// RUN: not bitnet-compile %t/model.mlir --target=x86_64-linux-gnu --cpu=x86-64-v4 --kernels=neon --emit=obj -o %t/never.o 2>&1 | FileCheck %s --check-prefix=ERR-X86
// ERR-X86: error: --kernels=neon needs a target with dotprod (this one is x86_64-unknown-linux-gnu x86-64-v4)

// RUN: not bitnet-compile %t/model.mlir --target=aarch64-linux-gnu --cpu=neoverse-n1 --kernels=avx2 --emit=obj -o %t/never.o 2>&1 | FileCheck %s --check-prefix=ERR-AVX2
// ERR-AVX2: error: --kernels=avx2 needs a target with avx2 (this one is aarch64-unknown-linux-gnu neoverse-n1)

//--- model.mlir
func.func @bitlinear(%x: tensor<3x40xf32> {bitnet.name = "x"}) -> tensor<3x20xf32>
    attributes {bitnet.output_names = ["y"]} {
  %w = arith.constant dense<0.25> : tensor<20x40xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<20x40xf32> -> tensor<20x40xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<20x40xi8> -> !bitnet.ternary<20x40, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<3x40xf32>, !bitnet.ternary<20x40, i2>, tensor<f32> -> tensor<3x20xf32>
  return %y : tensor<3x20xf32>
}
