//! What the benchmarks share: repeated timings with their median and best, the machine's
//! matrix-multiply ceiling, and settings from the environment.
// Each bench compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use rand::Rng;
use rand_distr::StandardNormal;
use science::data::Dataset;
use science::model::matmul::{MatrixView, multiply, on_threads};
use science::rng::{Stream, stream};

/// Each timing repeats its work for at least this long.
pub const MIN_SECONDS: f64 = 1.0;

/// Repeated timings of one piece of work: their median, and the best (the work undisturbed).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median: f64,
    pub best: f64,
}

/// Times `run` repeatedly for at least [`MIN_SECONDS`], after two untimed warm-up calls.
pub fn timing(mut run: impl FnMut()) -> Timing {
    run();
    run();
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || started.elapsed().as_secs_f64() < MIN_SECONDS {
        let one = Instant::now();
        run();
        times.push(one.elapsed().as_secs_f64());
    }
    Timing {
        median: median(&times),
        best: smallest(&times),
    }
}

pub fn best_seconds(run: impl FnMut()) -> f64 {
    timing(run).best
}

/// Seconds of one 1024×4096 · 4096×4096 product on `threads` threads, the faster of two ways:
/// our banded `multiply` and a single `gemm` call with gemm's own threading (which, on a product
/// this large, shares its packed blocks between threads where bands each pack their own).
pub fn matmul_timing(threads: usize) -> Timing {
    let (rows, inner, cols) = (1024, 4096, 4096);
    let lhs = random_vector(rows * inner, 1);
    let rhs = random_vector(inner * cols, 2);
    let mut output = vec![0.0f32; rows * cols];
    let banded = on_threads(threads, || {
        timing(|| {
            multiply(
                &mut output,
                MatrixView::row_major(&lhs, rows, inner),
                MatrixView::row_major(&rhs, inner, cols),
                false,
                threads,
            )
        })
    })
    .expect("the helper threads start");
    let single_call = timing(|| {
        // SAFETY: all three buffers hold exactly the row-major matrices the sizes and strides
        // describe.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                inner,
                output.as_mut_ptr(),
                1,
                cols as isize,
                false,
                lhs.as_ptr(),
                1,
                inner as isize,
                rhs.as_ptr(),
                1,
                cols as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                },
            )
        }
    });
    Timing {
        median: banded.median.min(single_call.median),
        best: banded.best.min(single_call.best),
    }
}

pub const MATMUL_FLOPS: f64 = 2.0 * 1024.0 * 4096.0 * 4096.0;

pub fn random_vector(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = stream(seed, Stream::TrainInputs);
    (0..len).map(|_| rng.sample(StandardNormal)).collect()
}

/// `examples` standard-normal inputs of `dim` features with uniform labels, from `seed`.
pub fn random_dataset(examples: usize, dim: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = stream(seed, Stream::TrainInputs);
    Dataset {
        inputs: random_vector(examples * dim, seed),
        labels: (0..examples)
            .map(|_| rng.random_range(0..classes as u32))
            .collect(),
        n: examples,
        dim,
        classes,
    }
}

pub fn smallest(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn list_from_env(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(text) => text
            .split(',')
            .map(|item| {
                item.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: `{item}` is not a positive integer"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// The PyTorch script kept running (`--serve`), asked for one figure at a time.
pub struct PyTorch {
    pub python: String,
    pub version: String,
    _child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl PyTorch {
    /// Starts `benches/SCRIPT --serve ARGS` with `$TORCH_PYTHON`, else
    /// `/opt/torch-venv/bin/python`, else `python3`, and checks that it answers; or says why it
    /// cannot.
    pub fn start(script: &str, args: &[&str]) -> Result<Self, String> {
        let python = std::env::var("TORCH_PYTHON").unwrap_or_else(|_| {
            let venv = "/opt/torch-venv/bin/python";
            if Path::new(venv).exists() {
                venv.to_string()
            } else {
                "python3".to_string()
            }
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches")
            .join(script);
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--serve")
            .args(args)
            .args(["--min-seconds", &MIN_SECONDS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run {python}: {error}"))?;
        let (Some(requests), Some(answers)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!("{python} was started without pipes"));
        };
        let mut torch = Self {
            python,
            version: String::new(),
            _child: child,
            requests,
            answers: BufReader::new(answers),
        };
        // A tiny request first: it fails fast, with the reason, where torch is missing.
        let record = torch
            .ask(1, 16)
            .map_err(|reason| format!("{} {}: {reason}", torch.python, script.display()))?;
        torch.version = record["torch_version"].as_str().unwrap_or("?").to_string();
        Ok(torch)
    }

    /// The median and best seconds the script reports under `median` and `best` for `width` on
    /// `threads` threads.
    pub fn timing(
        &mut self,
        threads: usize,
        width: usize,
        median: &str,
        best: &str,
    ) -> Result<Timing, String> {
        let record = self.ask(threads, width)?;
        let field = |name: &str| {
            record[name]
                .as_f64()
                .ok_or_else(|| format!("no {name} in {record}"))
        };
        Ok(Timing {
            median: field(median)?,
            best: field(best)?,
        })
    }

    pub fn ask(&mut self, threads: usize, width: usize) -> Result<serde_json::Value, String> {
        writeln!(self.requests, "{threads} {width}")
            .and_then(|()| self.requests.flush())
            .map_err(|error| format!("the script stopped reading: {error}"))?;
        let mut line = String::new();
        match self.answers.read_line(&mut line) {
            Ok(0) => Err("the script exited (is torch installed?)".to_string()),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|error| format!("unreadable line `{}`: {error}", line.trim())),
            Err(error) => Err(format!("cannot read the script's answer: {error}")),
        }
    }
}
