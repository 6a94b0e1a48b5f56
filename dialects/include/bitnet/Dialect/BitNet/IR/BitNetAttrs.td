//===- BitNetAttrs.td - Attributes and enums of bitnet -----*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_BITNETATTRS_TD
#define BITNET_DIALECT_BITNET_IR_BITNETATTRS_TD

include "mlir/IR/EnumAttr.td"
include "bitnet/Dialect/BitNet/IR/BitNetDialect.td"

// How the values {-1, 0, +1} of a ternary matrix are stored in bytes.
def BitNet_TernaryFormat : I32EnumAttr<"TernaryFormat",
    "storage format of ternary values", [
  // One signed byte per value, holding -1, 0 or 1.
  I32EnumAttrCase<"Int8", 0, "int8">,
  // Two bits per value, four values per byte. A value w is stored as the code
  // w + 1 in {0, 1, 2}; value t of a group of four sits in bits [2t, 2t+2).
  I32EnumAttrCase<"I2", 1, "i2">,
  // Five values per byte (1.6 bits each): byte = sum_t (w_t + 1) * 3^t.
  I32EnumAttrCase<"Base3", 2, "base3">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

// Where the bytes of a packed matrix go. Kernel-specific interleavings and
// tilings are added here as the kernels that read them are.
def BitNet_WeightLayout : I32EnumAttr<"WeightLayout",
    "arrangement of packed ternary bytes", [
  // Row n of the N x K matrix is stored contiguously; the values of a byte are
  // consecutive along K; a row's last byte is padded with zero weights.
  I32EnumAttrCase<"RowMajor", 0, "row_major">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

// Which feature pairs a rotary embedding rotates together.
def BitNet_RopeStyle : I32EnumAttr<"RopeStyle", "pairing of rotary features", [
  // (i, i + D/2), as in Llama and the Hugging Face BitNet models.
  I32EnumAttrCase<"Half", 0, "half">,
  // (2i, 2i + 1), as in the original RoFormer and GPT-J.
  I32EnumAttrCase<"Interleaved", 1, "interleaved">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

def BitNet_RopeStyleAttr : EnumAttr<BitNet_Dialect, BitNet_RopeStyle, "rope_style"> {
  let assemblyFormat = "`<` $value `>`";
}

// Precision of the float weights of embeddings and dense layers (a decoder's
// embedding table and head).
def BitNet_FloatPrecision : I32EnumAttr<"FloatPrecision",
    "precision of float weights", [
  // IEEE single precision, as the model stores them.
  I32EnumAttrCase<"F32", 0, "f32">,
  // IEEE half precision, rounded to nearest even at compile time.
  I32EnumAttrCase<"F16", 1, "f16">,
  // Signed bytes with one f32 scale per row (absmax / 127).
  I32EnumAttrCase<"Int8", 2, "int8">,
  // As Int8, and dense layers quantise their input rows to int8 too (W8A8:
  // int8 dot products).
  I32EnumAttrCase<"W8A8", 3, "w8a8">,
  // bfloat16 (f32's exponent, 8 significant bits), rounded to nearest even
  // at compile time: a bf16 checkpoint's weights exactly, in 2 bytes.
  I32EnumAttrCase<"BF16", 4, "bf16">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

// Element type of the key and value caches a decoder step keeps as state.
def BitNet_KVCacheType : I32EnumAttr<"KVCacheType",
    "element type of KV caches", [
  I32EnumAttrCase<"F16", 0, "f16">,
  I32EnumAttrCase<"F32", 1, "f32">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

// The instruction set of a CPU kernel for bitlinear layers.
def BitNet_KernelISA : I32EnumAttr<"KernelISA",
    "instruction set of CPU kernels", [
  // No kernel: the reference lowering (linalg).
  I32EnumAttrCase<"None", 0, "none">,
  // x86 AVX-512 with VNNI (vpdpbusd on 512-bit vectors).
  I32EnumAttrCase<"AVX512VNNI", 1, "avx512vnni">,
  // x86 AVX-VNNI (vpdpbusd on 256-bit vectors).
  I32EnumAttrCase<"AVXVNNI", 2, "avxvnni">,
  // x86 AVX2 (vpmaddubsw).
  I32EnumAttrCase<"AVX2", 3, "avx2">,
  // AArch64 Advanced SIMD with the dot product extension (sdot).
  I32EnumAttrCase<"NEON", 4, "neon">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

// How a bitlinear kernel computes: multiply-add on int8 dot products, or
// table lookups of precomputed partial sums.
def BitNet_KernelFamily : I32EnumAttr<"KernelFamily",
    "family of bitlinear kernels", [
  I32EnumAttrCase<"MAD", 0, "mad">,
  I32EnumAttrCase<"LUT", 1, "lut">,
  // A cost model chooses MAD or LUT per layer.
  I32EnumAttrCase<"Auto", 2, "auto">
]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Targets
//===----------------------------------------------------------------------===//

def BitNet_TargetAttr : AttrDef<BitNet_Dialect, "Target"> {
  let mnemonic = "target";
  let summary = "The machine a module is compiled for";
  let description = [{
    Set on the module (`bitnet.target`) by the compiler driver from the
    target the user chose, and read by the stages that depend on it: the
    model descriptor records `triple`/`chip` and the `features` a loader
    checks before it runs the code.

    * `backend`: the registered target that compiles the module (`cpu`,
      `nvptx`).
    * `triple`: the LLVM target triple of the host code.
    * `chip`: the LLVM CPU name, or the GPU architecture (`sm_90`).
    * `features`: the CPU features the code needs, comma-separated, as
      loaders test them (empty for a GPU build: the driver checks the GPU).

    ```mlir
    module attributes {bitnet.target = #bitnet.target<backend = "cpu",
        triple = "x86_64-unknown-linux-gnu", chip = "znver4",
        features = "avx2,avx512f">} { ... }
    ```
  }];
  let parameters = (ins StringRefParameter<"registered target name">:$backend,
                        StringRefParameter<"LLVM target triple">:$triple,
                        StringRefParameter<"CPU or GPU name">:$chip,
                        StringRefParameter<"checkable CPU features", "\"\"">:$features);
  let assemblyFormat = "`<` struct(params) `>`";
  let extraClassDeclaration = [{
    /// What the model descriptor says of the target: "<triple> <cpu>" for
    /// a CPU, "<gpu> (<triple> host)" for a GPU.
    std::string getDescription() const;
  }];
}

def BitNet_VariantAttr : AttrDef<BitNet_Dialect, "Variant"> {
  let mnemonic = "variant";
  let summary = "Another build of the model, for another CPU, in the same object";
  let description = [{
    The module attribute `bitnet.variants` lists, best first, the builds of
    the same model for other CPUs that are linked beside this one. The model
    descriptor lists them, and the loader runs the first one the machine
    supports (the baseline build otherwise).

    * `chip`: the CPU the variant was built for.
    * `run`: its run function (`bitnet_model_run` renamed).
    * `workspace_bytes`, `workspace_alignment`: its own workspace.
    * `features`: the CPU features it needs.
    * `stack_bytes`: the stack its kernels use.

    ```mlir
    module attributes {bitnet.variants = [#bitnet.variant<chip = "znver4",
        run = @bitnet_model_run__znver4, workspace_bytes = 4096,
        workspace_alignment = 64, features = "avx2,avx512f",
        stack_bytes = 0>]} { ... }
    ```
  }];
  let parameters = (ins StringRefParameter<"CPU name">:$chip,
                        "::mlir::FlatSymbolRefAttr":$run,
                        "int64_t":$workspace_bytes,
                        "int64_t":$workspace_alignment,
                        StringRefParameter<"checkable CPU features">:$features,
                        "int64_t":$stack_bytes);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // BITNET_DIALECT_BITNET_IR_BITNETATTRS_TD
