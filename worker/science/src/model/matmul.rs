//! A safe wrapper around `gemm` for f32 matrices given by strided views.
//!
//! A large product is cut into one band of its output per thread, and each band is one
//! single-threaded `gemm` call. Bands scale better than `gemm`'s own threading, which splits
//! little when one side of the product is a batch of 128.
//!
//! The numbers do not depend on the cut, so neither do they on the thread count: `gemm` (0.19)
//! sums over the inner dimension in blocks whose size depends on that dimension alone, except in
//! its special paths for small outputs (both sides at most 64, or a side of 1), which may block
//! differently. A product is therefore cut only when both sides of its output exceed 64, and the
//! tests compare products and whole trials on 1, 2, 3 and 8 threads bit by bit.
//!
//! The threads are the team [`on_threads`] starts for a whole trial (see `team.rs`).

use gemm::{Parallelism, gemm};

pub use crate::model::team::on_threads;
use crate::model::team::share_out;

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
    let bands = Bands::of(rows, cols, inner, threads);
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
    share_out(bands.count, &|band| product.run(band));
}

/// Below this many multiply-adds a product runs on the calling thread: waking others costs more.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 23;
/// Neither side of an output that is cut may be this short or shorter: `gemm` may sum in other
/// blocks for a band with both sides at most 64 (see the module's documentation).
const UNCUT_SIDE: usize = 64;
/// No band is narrower than this (a multiple of every kernel's register block).
const MIN_BAND: usize = 64;

/// How a product's output is cut: along its longer side, into `count` bands of `size` (the last
/// one shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bands {
    along_rows: bool,
    length: usize,
    size: usize,
    count: usize,
}

impl Bands {
    /// One band per thread for a product large enough to share, else one band.
    fn of(rows: usize, cols: usize, inner: usize, threads: usize) -> Self {
        let along_rows = rows >= cols;
        let length = rows.max(cols);
        let shared =
            rows * cols * inner >= PARALLEL_MIN_MULTIPLY_ADDS && rows.min(cols) > UNCUT_SIDE;
        let wanted = if shared {
            threads.clamp(1, (length / MIN_BAND).max(1))
        } else {
            1
        };
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
    /// Computes one band on the calling thread.
    fn run(&self, band: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Row-major operands `lhs` (rows × inner) and `rhs` (inner × cols) with varied values.
    fn operands(rows: usize, inner: usize, cols: usize) -> (Vec<f32>, Vec<f32>) {
        (
            (0..rows * inner).map(|i| (i as f32 * 0.37).sin()).collect(),
            (0..inner * cols).map(|i| (i as f32 * 0.91).cos()).collect(),
        )
    }

    /// `lhs · rhs` in f64, by the textbook triple loop.
    fn naive_product(lhs: &[f32], rhs: &[f32], rows: usize, inner: usize, cols: usize) -> Vec<f64> {
        let mut output = vec![0.0; rows * cols];
        for row in 0..rows {
            for col in 0..cols {
                for k in 0..inner {
                    output[row * cols + col] +=
                        f64::from(lhs[row * inner + k]) * f64::from(rhs[k * cols + col]);
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
        let (lhs, rhs) = operands(rows, inner, cols);
        let expected = naive_product(&lhs, &rhs, rows, inner, cols);
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
            let (lhs, rhs) = operands(rows, inner, cols);
            let start: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.11).cos()).collect();
            let product = naive_product(&lhs, &rhs, rows, inner, cols);
            for threads in [1, 2] {
                let mut output = start.clone();
                on_threads(threads, || {
                    multiply_combining(
                        &mut output,
                        MatrixView::row_major(&lhs, rows, inner),
                        MatrixView::row_major(&rhs, inner, cols),
                        Combine::Fold {
                            keep: 0.5,
                            scale: -2.0,
                        },
                        threads,
                    )
                })
                .expect("the helper threads start");
                for ((got, before), product) in output.iter().zip(&start).zip(&product) {
                    let want = 0.5 * f64::from(*before) - 2.0 * product;
                    assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn bands_cover_the_output_once_and_only_large_products_are_cut() {
        let shapes = [
            (128, 784, 4096),
            (4096, 128, 4096),
            (10, 128, 4096),
            (37, 1, 100),
            (1000, 999, 128),
            (65, 1000, 128),
        ];
        for (rows, cols, inner) in shapes {
            for threads in 1..=8 {
                let bands = Bands::of(rows, cols, inner, threads);
                let covered: usize = (0..bands.count).map(|band| bands.range(band).len()).sum();
                assert_eq!(covered, rows.max(cols), "{rows}×{cols}: {bands:?}");
                assert!((0..bands.count).all(|band| !bands.range(band).is_empty()));
                assert!(
                    bands.count <= threads,
                    "{rows}×{cols} on {threads}: {bands:?}"
                );
                let large = rows * cols * inner >= PARALLEL_MIN_MULTIPLY_ADDS
                    && rows.min(cols) > UNCUT_SIDE;
                assert_eq!(
                    bands.count > 1,
                    large && threads > 1,
                    "{rows}×{cols}×{inner}"
                );
            }
        }
    }

    /// The bits of `lhs · rhs` folded into a fixed start, computed on `threads` threads with a
    /// team of that many, as a trial computes it.
    fn product_bits(lhs: MatrixView<'_>, rhs: MatrixView<'_>, threads: usize) -> Vec<u32> {
        let cells = lhs.rows() * rhs.cols();
        let mut output: Vec<f32> = (0..cells).map(|i| (i as f32 * 0.11).cos()).collect();
        let combine = Combine::Fold {
            keep: 0.5,
            scale: -0.25,
        };
        on_threads(threads, || {
            multiply_combining(&mut output, lhs, rhs, combine, threads)
        })
        .expect("the helper threads start");
        output.iter().map(|value| value.to_bits()).collect()
    }

    #[test]
    fn products_are_bit_identical_whatever_the_number_of_threads() {
        // Inner dimensions below, at and above gemm's blocks of 512; outputs cut into bands of
        // rows and of columns; operands row-major and transposed, as the network's products are.
        for (rows, inner, cols) in [(150, 700, 600), (600, 128, 130), (130, 1100, 200)] {
            let (lhs, rhs) = operands(rows, inner, cols);
            let lhs_transposed = transpose(&lhs, rows, inner);
            let views = [
                (
                    MatrixView::row_major(&lhs, rows, inner),
                    MatrixView::row_major(&rhs, inner, cols),
                ),
                (
                    MatrixView::row_major(&lhs_transposed, inner, rows).transposed(),
                    MatrixView::row_major(&rhs, inner, cols),
                ),
            ];
            for (lhs_view, rhs_view) in views {
                assert!(
                    Bands::of(rows, cols, inner, 2).count == 2,
                    "{rows}×{inner}×{cols}"
                );
                let single = product_bits(lhs_view, rhs_view, 1);
                for threads in [2, 3, 8] {
                    assert_eq!(
                        single,
                        product_bits(lhs_view, rhs_view, threads),
                        "{rows}×{inner}×{cols} on {threads} threads"
                    );
                }
            }
        }
    }
}
