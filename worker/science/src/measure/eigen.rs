//! Small dense symmetric eigen solvers in f64: the implicit QL method for a symmetric
//! tridiagonal matrix (the Lanczos matrix) and cyclic Jacobi for a dense symmetric matrix (the
//! Gram matrix of an iterate cloud). Both return eigenvalues in descending order with their
//! orthonormal eigenvectors.

/// Eigenvalues (descending) and eigenvectors: `vectors[i]` belongs to `values[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricEigen {
    pub values: Vec<f64>,
    pub vectors: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EigenError {
    #[error("the eigen solver did not converge")]
    NoConvergence,
    #[error("the matrix has a non-finite entry")]
    NotFinite,
}

/// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `diagonal` (n) and
/// off-diagonal `off_diagonal` (n − 1; entry i couples rows i and i + 1), by QL iterations with
/// implicit Wilkinson shifts (Numerical Recipes' `tqli`).
pub fn tridiagonal_eigen(
    diagonal: &[f64],
    off_diagonal: &[f64],
) -> Result<SymmetricEigen, EigenError> {
    let n = diagonal.len();
    assert_eq!(
        off_diagonal.len(),
        n.saturating_sub(1),
        "a tridiagonal matrix of order n has n − 1 off-diagonal entries"
    );
    if diagonal.iter().chain(off_diagonal).any(|v| !v.is_finite()) {
        return Err(EigenError::NotFinite);
    }
    let mut d = diagonal.to_vec();
    let mut e = off_diagonal.to_vec();
    e.push(0.0);
    // z[k * n + i]: component k of eigenvector i.
    let mut z = vec![0.0; n * n];
    for i in 0..n {
        z[i * n + i] = 1.0;
    }
    for l in 0..n {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let scale = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * scale {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > 60 {
                return Err(EigenError::NoConvergence);
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                for k in 0..n {
                    let f = z[k * n + i + 1];
                    z[k * n + i + 1] = s * z[k * n + i] + c * f;
                    z[k * n + i] = c * z[k * n + i] - s * f;
                }
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(sorted(d, |i, k| z[k * n + i], n))
}

/// Eigen-decomposition of the dense symmetric `n × n` row-major matrix by cyclic Jacobi
/// rotations until the off-diagonal mass is below 1e-30 of the total (at most 100 sweeps of
/// O(n³) each: meant for n up to a few hundred).
pub fn symmetric_eigen(matrix: &[f64], n: usize) -> Result<SymmetricEigen, EigenError> {
    assert_eq!(
        matrix.len(),
        n * n,
        "matrix has the wrong number of entries"
    );
    if matrix.iter().any(|v| !v.is_finite()) {
        return Err(EigenError::NotFinite);
    }
    let mut a = matrix.to_vec();
    // Symmetrise, so that rounding asymmetry in the input cannot stall the rotations.
    for p in 0..n {
        for q in p + 1..n {
            let mean = 0.5 * (a[p * n + q] + a[q * n + p]);
            a[p * n + q] = mean;
            a[q * n + p] = mean;
        }
    }
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    let mut converged = false;
    for _ in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += 2.0 * a[p * n + q] * a[p * n + q];
            }
        }
        if off <= 1e-30 * total || off == 0.0 {
            converged = true;
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = 1.0_f64.copysign(theta) / (theta.abs() + theta.hypot(1.0));
                let c = 1.0 / t.hypot(1.0);
                let s = t * c;
                // A ← Jᵀ A J, J the rotation in the (p, q) plane; columns then rows.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    if !converged {
        return Err(EigenError::NoConvergence);
    }
    let values: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    Ok(sorted(values, |i, k| v[k * n + i], n))
}

/// Sorts eigenpairs by descending value; `component(i, k)` is component k of vector i.
fn sorted(values: Vec<f64>, component: impl Fn(usize, usize) -> f64, n: usize) -> SymmetricEigen {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&x, &y| values[y].total_cmp(&values[x]));
    SymmetricEigen {
        values: order.iter().map(|&i| values[i]).collect(),
        vectors: order
            .iter()
            .map(|&i| (0..n).map(|k| component(i, k)).collect())
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::{Stream, stream};
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// A symmetric matrix's eigenvalues, largest first, by nalgebra's exact decomposition.
    pub(crate) fn exact_descending(matrix: &nalgebra::DMatrix<f64>) -> Vec<f64> {
        let mut values: Vec<f64> = matrix
            .clone()
            .symmetric_eigen()
            .eigenvalues
            .iter()
            .copied()
            .collect();
        values.sort_by(|a, b| b.total_cmp(a));
        values
    }

    /// ||A u − λ u|| small and the vectors orthonormal.
    fn check_pairs(matrix: &nalgebra::DMatrix<f64>, eigen: &SymmetricEigen, tolerance: f64) {
        let n = matrix.nrows();
        for (value, vector) in eigen.values.iter().zip(&eigen.vectors) {
            let u = nalgebra::DVector::from_column_slice(vector);
            let residual = (matrix * &u - &u * *value).norm();
            assert!(residual < tolerance, "residual {residual} for {value}");
        }
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = eigen.vectors[i]
                    .iter()
                    .zip(&eigen.vectors[j])
                    .map(|(a, b)| a * b)
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < tolerance, "vectors {i}, {j}: {dot}");
            }
        }
    }

    #[test]
    fn tridiagonal_ql_matches_nalgebra() {
        let mut rng = stream(4, Stream::PowerIteration);
        for n in [1usize, 2, 5, 17, 40] {
            let diagonal: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            let mut off: Vec<f64> = (0..n.saturating_sub(1))
                .map(|_| rng.sample(StandardNormal))
                .collect();
            if n > 4 {
                off[2] = 0.0; // an already split matrix
            }
            let mut dense = nalgebra::DMatrix::<f64>::zeros(n, n);
            for i in 0..n {
                dense[(i, i)] = diagonal[i];
                if i + 1 < n {
                    dense[(i, i + 1)] = off[i];
                    dense[(i + 1, i)] = off[i];
                }
            }
            let eigen = tridiagonal_eigen(&diagonal, &off).expect("converges");
            for (got, want) in eigen.values.iter().zip(exact_descending(&dense)) {
                assert!((got - want).abs() < 1e-11, "n {n}: {got} vs {want}");
            }
            check_pairs(&dense, &eigen, 1e-10);
        }
    }

    #[test]
    fn jacobi_matches_nalgebra_including_repeated_values() {
        let mut rng = stream(5, Stream::PowerIteration);
        for n in [1, 3, 8, 30] {
            let mut dense = nalgebra::DMatrix::<f64>::zeros(n, n);
            for i in 0..n {
                for j in i..n {
                    let value: f64 = rng.sample(StandardNormal);
                    dense[(i, j)] = value;
                    dense[(j, i)] = value;
                }
            }
            let flat: Vec<f64> = (0..n * n).map(|k| dense[(k / n, k % n)]).collect();
            let eigen = symmetric_eigen(&flat, n).expect("converges");
            for (got, want) in eigen.values.iter().zip(exact_descending(&dense)) {
                assert!((got - want).abs() < 1e-11, "n {n}: {got} vs {want}");
            }
            check_pairs(&dense, &eigen, 1e-10);
        }
        // diag(2, 2, −1) rotated: repeated eigenvalue 2.
        let (c, s) = (0.6, 0.8);
        let rotated = [
            2.0,
            0.0,
            0.0,
            0.0,
            2.0 * c * c - s * s,
            3.0 * c * s,
            0.0,
            3.0 * c * s,
            2.0 * s * s - c * c,
        ];
        let eigen = symmetric_eigen(&rotated, 3).expect("converges");
        for (got, want) in eigen.values.iter().zip([2.0, 2.0, -1.0]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(symmetric_eigen(&[f64::NAN], 1), Err(EigenError::NotFinite));
    }
}
