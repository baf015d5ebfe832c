//! Noisy mini-batch SGD and the training loop with its stop rule.

pub mod noise;
pub mod sgd;
pub mod training;
