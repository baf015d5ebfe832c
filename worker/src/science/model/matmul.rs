//! A safe wrapper around `gemm` for f32 matrices given by strided views.
//!
//! Products may run on several threads of rayon's pool. `gemm` splits a product by blocks of the
//! output and sums every output element over the inner dimension in the same order whatever the
//! number of threads, so the thread count changes the speed, never the numbers.

use gemm::{Parallelism, gemm};

/// A read-only view of a dense f32 matrix; a transpose is a view with swapped strides.
#[derive(Debug, Clone, Copy)]
pub struct MatrixView<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatrixView<'a> {
    /// The first `rows × cols` values of `data`, row by row.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "a {rows}×{cols} matrix needs {} values, got {}",
            rows * cols,
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    pub fn transposed(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// `output = lhs · rhs`, or `output += lhs · rhs` when `accumulate`; `output` is row-major. Runs
/// on up to `threads` threads (0 and 1 both mean the calling thread alone).
pub fn multiply(
    output: &mut [f32],
    lhs: MatrixView<'_>,
    rhs: MatrixView<'_>,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(
        lhs.cols, rhs.rows,
        "inner dimensions of a matrix product differ"
    );
    let (rows, inner, cols) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(
        output.len() >= rows * cols,
        "matrix product output is too small"
    );
    if rows == 0 || cols == 0 {
        return;
    }
    if inner == 0 {
        if !accumulate {
            output[..rows * cols].fill(0.0);
        }
        return;
    }
    // SAFETY: views are only built by `row_major` (which checks that the slice holds every
    // element) and `transposed` (which keeps the same elements), and `output` was checked
    // above, so every index gemm touches is inside its slice. Slice lengths fit in isize.
    unsafe {
        gemm(
            rows,
            cols,
            inner,
            output.as_mut_ptr(),
            1,
            cols as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if threads > 1 {
                Parallelism::Rayon(threads)
            } else {
                Parallelism::None
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_product(lhs: &[f64], rhs: &[f64], rows: usize, inner: usize, cols: usize) -> Vec<f64> {
        let mut output = vec![0.0; rows * cols];
        for row in 0..rows {
            for col in 0..cols {
                for k in 0..inner {
                    output[row * cols + col] += lhs[row * inner + k] * rhs[k * cols + col];
                }
            }
        }
        output
    }

    fn transpose(matrix: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut output = vec![0.0; rows * cols];
        for row in 0..rows {
            for col in 0..cols {
                output[col * rows + row] = matrix[row * cols + col];
            }
        }
        output
    }

    #[test]
    fn strided_products_match_a_naive_product() {
        let (rows, inner, cols) = (5, 7, 3);
        let lhs: Vec<f32> = (0..rows * inner).map(|i| (i as f32 * 0.37).sin()).collect();
        let rhs: Vec<f32> = (0..inner * cols).map(|i| (i as f32 * 0.91).cos()).collect();
        let expected = naive_product(
            &lhs.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            &rhs.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            rows,
            inner,
            cols,
        );
        let lhs_transposed = transpose(&lhs, rows, inner);
        let rhs_transposed = transpose(&rhs, inner, cols);
        let cases = [
            (
                MatrixView::row_major(&lhs, rows, inner),
                MatrixView::row_major(&rhs, inner, cols),
            ),
            (
                MatrixView::row_major(&lhs_transposed, inner, rows).transposed(),
                MatrixView::row_major(&rhs_transposed, cols, inner).transposed(),
            ),
        ];
        for (lhs_view, rhs_view) in cases {
            let mut output = vec![f32::NAN; rows * cols];
            multiply(&mut output, lhs_view, rhs_view, false, 1);
            for (got, want) in output.iter().zip(&expected) {
                assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
            }
            multiply(&mut output, lhs_view, rhs_view, true, 1);
            for (got, want) in output.iter().zip(&expected) {
                assert!(
                    (f64::from(*got) - 2.0 * want).abs() < 1e-5,
                    "{got} vs {}",
                    2.0 * want
                );
            }
        }
    }

    #[test]
    fn products_are_bit_identical_whatever_the_number_of_threads() {
        let (rows, inner, cols) = (150, 700, 300);
        let lhs: Vec<f32> = (0..rows * inner).map(|i| (i as f32 * 0.37).sin()).collect();
        let rhs: Vec<f32> = (0..inner * cols).map(|i| (i as f32 * 0.91).cos()).collect();
        let product = |threads| {
            let mut output = vec![0.0f32; rows * cols];
            multiply(
                &mut output,
                MatrixView::row_major(&lhs, rows, inner),
                MatrixView::row_major(&rhs, inner, cols),
                false,
                threads,
            );
            output
                .iter()
                .map(|value| value.to_bits())
                .collect::<Vec<_>>()
        };
        let single = product(1);
        assert_eq!(single, product(2));
        assert_eq!(single, product(3));
    }
}
