//===- BitNetTypes.td - Types of the bitnet dialect --------*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_BITNETTYPES_TD
#define BITNET_DIALECT_BITNET_IR_BITNETTYPES_TD

include "mlir/IR/AttrTypeBase.td"
include "bitnet/Dialect/BitNet/IR/BitNetAttrs.td"

class BitNet_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<BitNet_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def BitNet_TernaryType : BitNet_Type<"Ternary", "ternary"> {
  let summary = "a ternary weight matrix and how it is stored";
  let description = [{
    A matrix of `rows x cols` values in {-1, 0, +1} (`rows` is the number of
    outputs N of a linear layer, `cols` its reduction size K), together with
    the format and layout of its bytes. The layout defaults to `row_major` and
    is then not printed.

    ```mlir
    !bitnet.ternary<2560x2560, int8>             // 1 byte per value
    !bitnet.ternary<6912x2560, i2>               // 4 values per byte
    !bitnet.ternary<640x2560, base3, row_major>  // 5 values per byte
    ```

    A value of this type lowers to its storage tensor (`getStorageType()`):
    `tensor<N x K x i8>` for `int8`, `tensor<N x ceildiv(K, 4) x i8>` for
    `i2` and `tensor<N x ceildiv(K, 5) x i8>` for `base3`.
  }];
  let parameters = (ins
    "int64_t":$rows,
    "int64_t":$cols,
    EnumParameter<BitNet_TernaryFormat>:$format,
    DefaultValuedParameter<"::mlir::bitnet::WeightLayout",
                           "::mlir::bitnet::WeightLayout::RowMajor">:$layout
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    TypeBuilder<(ins "int64_t":$rows, "int64_t":$cols,
                     "::mlir::bitnet::TernaryFormat":$format), [{
      return $_get($_ctxt, rows, cols, format,
                   ::mlir::bitnet::WeightLayout::RowMajor);
    }]>
  ];
  let extraClassDeclaration = [{
    /// Number of ternary values held by one storage byte.
    int64_t getValuesPerByte() const;
    /// Number of storage bytes of one row.
    int64_t getBytesPerRow() const;
    /// The tensor of bytes this matrix is stored in.
    ::mlir::RankedTensorType getStorageType() const;
  }];
}

#endif // BITNET_DIALECT_BITNET_IR_BITNETTYPES_TD
