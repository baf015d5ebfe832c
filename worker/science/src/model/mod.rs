//! The multilayer perceptron: parameters in one flat vector, forward, loss and backward.

pub mod evaluate;
pub mod hvp;
pub mod matmul;
pub mod mlp;
pub mod simd;
pub mod team;
pub mod thin;
