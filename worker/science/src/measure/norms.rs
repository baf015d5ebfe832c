//! Matrix norms of an out × in weight matrix stored row-major, accumulated in f64.

use rand::Rng;
use rand_distr::StandardNormal;

/// ||W||_op, the largest singular value, by power iteration on WᵀW from a random start.
/// It approaches the true value from below.
pub fn spectral_norm(
    matrix: &[f64],
    rows: usize,
    cols: usize,
    iterations: u32,
    rng: &mut impl Rng,
) -> f64 {
    assert_eq!(
        matrix.len(),
        rows * cols,
        "matrix has the wrong number of entries"
    );
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    let mut vector: Vec<f64> = (0..cols).map(|_| rng.sample(StandardNormal)).collect();
    if !normalize(&mut vector) {
        return 0.0;
    }
    let mut image = vec![0.0; rows];
    for _ in 0..iterations {
        multiply(matrix, rows, cols, &vector, &mut image);
        multiply_transposed(matrix, rows, cols, &image, &mut vector);
        if !normalize(&mut vector) {
            // W v = 0 for a start vector with a component along every right singular vector
            // (almost surely) means W = 0.
            return 0.0;
        }
    }
    multiply(matrix, rows, cols, &vector, &mut image);
    euclidean_norm(&image)
}

pub fn frobenius_norm(matrix: &[f64]) -> f64 {
    euclidean_norm(matrix)
}

/// The rows of a rows × cols row-major matrix; none when it has no columns.
fn matrix_rows(matrix: &[f64], rows: usize, cols: usize) -> std::slice::ChunksExact<'_, f64> {
    assert_eq!(
        matrix.len(),
        rows * cols,
        "matrix has the wrong number of entries"
    );
    // An empty matrix has no rows to cut, whatever the width of the (absent) chunks.
    matrix.chunks_exact(cols.max(1))
}

/// The (2,1) norm: the sum of the ℓ2 norms of the rows.
pub fn two_one_norm(matrix: &[f64], rows: usize, cols: usize) -> f64 {
    matrix_rows(matrix, rows, cols).map(euclidean_norm).sum()
}

/// The ℓ1,∞ norm: the largest ℓ1 norm of a row.
pub fn one_infinity_norm(matrix: &[f64], rows: usize, cols: usize) -> f64 {
    matrix_rows(matrix, rows, cols)
        .map(|row| row.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

pub fn euclidean_norm(values: &[f64]) -> f64 {
    values.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Scales `vector` to unit length; false (and unchanged) when its norm is zero or not finite.
pub fn normalize(vector: &mut [f64]) -> bool {
    let norm = euclidean_norm(vector);
    if !norm.is_finite() || norm <= 0.0 {
        return false;
    }
    for value in vector {
        *value /= norm;
    }
    true
}

pub(crate) fn multiply(
    matrix: &[f64],
    rows: usize,
    cols: usize,
    vector: &[f64],
    output: &mut [f64],
) {
    for (row, slot) in matrix.chunks_exact(cols).zip(output.iter_mut()).take(rows) {
        *slot = row.iter().zip(vector).map(|(a, b)| a * b).sum();
    }
}

pub(crate) fn multiply_transposed(
    matrix: &[f64],
    rows: usize,
    cols: usize,
    vector: &[f64],
    output: &mut [f64],
) {
    output.fill(0.0);
    for (row, &weight) in matrix.chunks_exact(cols).zip(vector).take(rows) {
        for (slot, value) in output.iter_mut().zip(row) {
            *slot += weight * value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};

    #[test]
    fn power_iteration_matches_an_exact_svd() {
        let mut rng = stream(5, Stream::PowerIteration);
        for (rows, cols) in [(6, 4), (3, 9), (10, 10)] {
            let values: Vec<f64> = (0..rows * cols)
                .map(|_| rng.sample(StandardNormal))
                .collect();
            let exact = nalgebra::DMatrix::from_row_slice(rows, cols, &values)
                .singular_values()
                .max();
            let estimate = spectral_norm(&values, rows, cols, 500, &mut rng);
            assert!(
                (estimate - exact).abs() <= 1e-8 * exact,
                "{rows}×{cols}: {estimate} vs {exact}"
            );
        }
    }

    #[test]
    fn power_iteration_finds_the_largest_entry_of_a_diagonal_matrix() {
        let mut matrix = vec![0.0; 16];
        for (index, value) in [1.0, -3.0, 2.5, 0.5].into_iter().enumerate() {
            matrix[index * 4 + index] = value;
        }
        let estimate = spectral_norm(&matrix, 4, 4, 200, &mut stream(1, Stream::PowerIteration));
        assert!((estimate - 3.0).abs() < 1e-9, "{estimate}");
        assert_eq!(
            spectral_norm(&[0.0; 6], 2, 3, 10, &mut stream(1, Stream::PowerIteration)),
            0.0
        );
    }

    #[test]
    fn entrywise_norms_match_hand_computation() {
        // Rows (3, 4) and (0, -12): row ℓ2 norms 5 and 12, row ℓ1 norms 7 and 12.
        let matrix = [3.0, 4.0, 0.0, -12.0];
        assert!((frobenius_norm(&matrix) - 13.0).abs() < 1e-12);
        assert!((two_one_norm(&matrix, 2, 2) - 17.0).abs() < 1e-12);
        assert!((one_infinity_norm(&matrix, 2, 2) - 12.0).abs() < 1e-12);
        // A 2×3 matrix: rows (1, -2, 2) → ℓ2 3, ℓ1 5; (2, 0, 0) → ℓ2 2, ℓ1 2.
        let wide = [1.0, -2.0, 2.0, 2.0, 0.0, 0.0];
        assert!((frobenius_norm(&wide) - 13.0f64.sqrt()).abs() < 1e-12);
        assert!((two_one_norm(&wide, 2, 3) - 5.0).abs() < 1e-12);
        assert!((one_infinity_norm(&wide, 2, 3) - 5.0).abs() < 1e-12);
    }
}
