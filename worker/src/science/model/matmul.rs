//! A safe wrapper around `gemm` for f32 matrices given by strided views.
//!
//! A product is cut into bands of its output whose sizes depend on its shape alone, and each band
//! is one single-threaded `gemm` call; threads share out the bands. The numbers therefore do not
//! depend on the thread count. (Cutting by thread count did change them: `gemm` chooses its
//! kernels and blocking from a call's shape.) Bands scale better than `gemm`'s own threading,
//! which splits little when one side of the product is a batch of 128.

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

/// What a product does with what its output already holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Combine {
    /// `output = lhs · rhs`
    Replace,
    /// `output = keep · output + scale · lhs · rhs`: folding a gradient into the parameters or
    /// a velocity as it is formed saves a pass over them.
    Fold { keep: f32, scale: f32 },
}

impl Combine {
    pub const ACCUMULATE: Self = Self::Fold {
        keep: 1.0,
        scale: 1.0,
    };
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
    let combine = if accumulate {
        Combine::ACCUMULATE
    } else {
        Combine::Replace
    };
    multiply_combining(output, lhs, rhs, combine, threads);
}

/// `lhs · rhs` combined into the row-major `output` as `combine` says, on up to `threads` threads.
pub fn multiply_combining(
    output: &mut [f32],
    lhs: MatrixView<'_>,
    rhs: MatrixView<'_>,
    combine: Combine,
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
    let (read_output, keep, scale) = match combine {
        Combine::Replace => (false, 0.0, 1.0),
        Combine::Fold { keep, scale } => (true, keep, scale),
    };
    if inner == 0 {
        for value in &mut output[..rows * cols] {
            *value = if read_output { keep * *value } else { 0.0 };
        }
        return;
    }
    let bands = Bands::of(rows, cols);
    let product = BandedProduct {
        output: OutputPointer(output.as_mut_ptr()),
        cols,
        inner,
        lhs,
        rhs,
        bands,
        read_output,
        keep,
        scale,
    };
    let flops = rows * cols * inner;
    let threads = threads.clamp(1, bands.count);
    if threads == 1 || flops < PARALLEL_MIN_MULTIPLY_ADDS {
        product.run(0..bands.count);
        return;
    }
    let share =
        |thread: usize| thread * bands.count / threads..(thread + 1) * bands.count / threads;
    rayon::scope(|scope| {
        let product = &product;
        for thread in 1..threads {
            scope.spawn(move |_| product.run(share(thread)));
        }
        product.run(share(0));
    });
}

/// Below this many multiply-adds a product runs on the calling thread: waking others costs more.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 23;
/// Bands are cut from the longer side of the output, at most this many ...
const MAX_BANDS: usize = 8;
/// ... and no narrower than this (a multiple of every kernel's register block).
const MIN_BAND: usize = 64;

/// How a product's output is cut: along its rows or its columns, into `count` bands of `size`
/// (the last one shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bands {
    along_rows: bool,
    length: usize,
    size: usize,
    count: usize,
}

impl Bands {
    fn of(rows: usize, cols: usize) -> Self {
        let along_rows = rows >= cols;
        let length = rows.max(cols);
        let wanted = (length / MIN_BAND).clamp(1, MAX_BANDS);
        let size = length.div_ceil(wanted).div_ceil(16) * 16;
        Self {
            along_rows,
            length,
            size,
            count: length.div_ceil(size),
        }
    }

    fn range(&self, band: usize) -> std::ops::Range<usize> {
        band * self.size..((band + 1) * self.size).min(self.length)
    }
}

/// The output's address, shared by the threads that write its disjoint bands.
struct OutputPointer(*mut f32);

// SAFETY: the threads given this pointer write disjoint bands of the output (see
// `BandedProduct::run`), and `multiply_combining` holds the output's `&mut` until they finish.
unsafe impl Send for OutputPointer {}
unsafe impl Sync for OutputPointer {}

struct BandedProduct<'a> {
    output: OutputPointer,
    cols: usize,
    inner: usize,
    lhs: MatrixView<'a>,
    rhs: MatrixView<'a>,
    bands: Bands,
    read_output: bool,
    keep: f32,
    scale: f32,
}

impl BandedProduct<'_> {
    /// Computes the given bands, one after another, on the calling thread.
    fn run(&self, bands: std::ops::Range<usize>) {
        for band in bands {
            let range = self.bands.range(band);
            // A band of rows takes those rows of lhs; a band of columns those columns of rhs.
            let (rows, cols, output_offset, lhs_offset, rhs_offset) = if self.bands.along_rows {
                (
                    range.len(),
                    self.cols,
                    range.start * self.cols,
                    range.start * self.lhs.row_stride,
                    0,
                )
            } else {
                (
                    self.lhs.rows,
                    range.len(),
                    range.start,
                    0,
                    range.start * self.rhs.col_stride,
                )
            };
            // SAFETY: `multiply_combining` checked that the output holds rows × cols values and
            // the views were checked when built, so each band's first element and every element
            // gemm reaches from it with these strides lie inside their slices. Bands are
            // disjoint, so no two threads write the same value.
            unsafe {
                gemm(
                    rows,
                    cols,
                    self.inner,
                    self.output.0.add(output_offset),
                    1,
                    self.cols as isize,
                    self.read_output,
                    self.lhs.data.as_ptr().add(lhs_offset),
                    self.lhs.col_stride as isize,
                    self.lhs.row_stride as isize,
                    self.rhs.data.as_ptr().add(rhs_offset),
                    self.rhs.col_stride as isize,
                    self.rhs.row_stride as isize,
                    self.keep,
                    self.scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        }
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
    fn a_fold_scales_the_output_and_the_product() {
        // 260 × 300 outputs are cut into bands of columns, 300 × 260 into bands of rows; both
        // are large enough to be shared between threads.
        for (rows, inner, cols) in [(260, 130, 300), (300, 130, 260)] {
            let lhs: Vec<f32> = (0..rows * inner).map(|i| (i as f32 * 0.37).sin()).collect();
            let rhs: Vec<f32> = (0..inner * cols).map(|i| (i as f32 * 0.91).cos()).collect();
            let start: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.11).cos()).collect();
            let product = naive_product(
                &lhs.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                &rhs.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                rows,
                inner,
                cols,
            );
            for threads in [1, 2] {
                let mut output = start.clone();
                multiply_combining(
                    &mut output,
                    MatrixView::row_major(&lhs, rows, inner),
                    MatrixView::row_major(&rhs, inner, cols),
                    Combine::Fold {
                        keep: 0.5,
                        scale: -2.0,
                    },
                    threads,
                );
                for ((got, before), product) in output.iter().zip(&start).zip(&product) {
                    let want = 0.5 * f64::from(*before) - 2.0 * product;
                    assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn bands_cover_the_output_once_and_depend_on_its_shape_alone() {
        for (rows, cols) in [(128, 784), (4096, 128), (10, 128), (37, 1), (1000, 999)] {
            let bands = Bands::of(rows, cols);
            let covered: usize = (0..bands.count).map(|band| bands.range(band).len()).sum();
            assert_eq!(covered, rows.max(cols), "{rows}×{cols}: {bands:?}");
            assert!(bands.count <= MAX_BANDS);
            assert!((0..bands.count).all(|band| !bands.range(band).is_empty()));
        }
    }

    #[test]
    fn products_are_bit_identical_whatever_the_number_of_threads() {
        // Eight bands of columns, shared between threads.
        let (rows, inner, cols) = (150, 700, 600);
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
        assert_eq!(single, product(8));
    }
}
