//! Data sets held in memory as f32 rows.

use std::ops::Range;

pub mod teacher_student;

/// Labelled examples: `inputs` is `n × dim`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: Vec<f32>,
    pub labels: Vec<u32>,
    pub n: usize,
    pub dim: usize,
    pub classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn input(&self, index: usize) -> &[f32] {
        &self.inputs[index * self.dim..(index + 1) * self.dim]
    }

    /// The consecutive rows `examples`, as one row-major block.
    pub fn inputs_of(&self, examples: Range<usize>) -> &[f32] {
        &self.inputs[examples.start * self.dim..examples.end * self.dim]
    }

    /// mean_i ||x_i||², the input scale that enters the norm-based bounds.
    pub fn mean_input_norm_squared(&self) -> f64 {
        let total: f64 = self
            .inputs
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum();
        total / self.n as f64
    }
}
