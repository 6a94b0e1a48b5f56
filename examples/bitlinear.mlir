// A BitNet b1.58 linear layer, the bundled example of the reference path.
// y = bitlinear(x, W): x is quantised per token to int8, multiplied by the
// ternary W (here packed 2 bits per weight at compile time) and rescaled.
func.func @bitlinear(%x: tensor<2x8xf32> {bitnet.name = "x"}) -> tensor<2x4xf32>
    attributes {bitnet.output_names = ["y"]} {
  // Latent float weights, ternarised (absmean) and packed at compile time.
  %w = arith.constant dense<[[ 0.9, -0.4,  0.0,  1.2, -1.1,  0.3,  0.05, -0.8],
                             [-0.2,  0.7,  0.6, -0.9,  0.0,  0.0,  1.5,  0.1],
                             [ 0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0],
                             [ 1.0,  1.0, -1.0, -1.0,  0.5, -0.5,  0.25, -0.25]]> : tensor<4x8xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  %packed = bitnet.pack %wq : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  %y = bitnet.bitlinear %x, %packed scale %ws : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
