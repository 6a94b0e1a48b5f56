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

#endif // BITNET_DIALECT_BITNET_IR_BITNETATTRS_TD
