//! How fast the engine trains, against the two yardsticks issue 3 names: the machine's own
//! single-precision matrix multiply and PyTorch on the same CPU.
//!
//! `cargo bench -p science --bench sgd_step` times one SGD step (forward, backward, update) of an
//! MLP 784→w→w→10, batch 128, f32, on 1 and 2 threads, and prints it beside
//! - the throughput of one large matrix product on as many threads (the ceiling for a step made
//!   of matrix products);
//! - the same step in PyTorch on the CPU (`benches/torch_sgd_step.py`, run with `$TORCH_PYTHON`,
//!   else `/opt/torch-venv/bin/python`, else `python3`; skipped with a note if torch is missing);
//! - what the stagnation probe and the Hessian measurements cost relative to training, from
//!   whole trials.
//!
//! Each figure is measured in `SGD_STEP_ROUNDS` rounds (default 3), ours right after PyTorch's,
//! because the machine's speed drifts by tens of percent over minutes when its host is busy. Two
//! tables follow: medians over rounds, and the best step of all (the undisturbed speed). `SGD_STEP_WIDTHS=64,256` and `SGD_STEP_THREADS=1` narrow the
//! grid.

use science::data::Dataset;
use science::model::matmul::on_threads;
use science::model::mlp::{Mlp, Workspace};
use science::rng::{Stream, stream};
use science::train::noise::NoiseSettings;
use science::train::sgd::{NoisySgd, SgdSettings};
use science::{SilentObserver, run_trial_with_threads};
use vocabulary::{Activation, DataConfig, DataSet, Init, RadiusUnit, TrialConfig};

mod common;

use common::{
    MATMUL_FLOPS, PyTorch, Timing, best_seconds, list_from_env, matmul_timing, median,
    random_dataset, smallest, timing,
};

const INPUT: usize = 784;
const CLASSES: usize = 10;
const BATCH: usize = 128;

fn main() {
    let widths = list_from_env("SGD_STEP_WIDTHS", &[64, 256, 1024, 4096]);
    let thread_counts = list_from_env("SGD_STEP_THREADS", &[1, 2]);
    let rounds = list_from_env("SGD_STEP_ROUNDS", &[3])[0].max(1);

    // The machine's speed drifts (it shares its host), so every figure is taken in each of
    // several rounds, ours right after PyTorch's.
    let mut torch = PyTorch::start("torch_sgd_step.py", &["--batch", &BATCH.to_string()]);
    let cells: Vec<(usize, usize)> = thread_counts
        .iter()
        .flat_map(|&threads| widths.iter().map(move |&width| (threads, width)))
        .collect();
    let mut ceilings = vec![Vec::new(); thread_counts.len()];
    let mut ours = vec![Vec::new(); cells.len()];
    let mut theirs = vec![Vec::new(); cells.len()];
    for _ in 0..rounds {
        for (slot, &threads) in thread_counts.iter().enumerate() {
            ceilings[slot].push(matmul_timing(threads));
        }
        for (cell, &(threads, width)) in cells.iter().enumerate() {
            if let Ok(torch) = torch.as_mut()
                && let Ok(step) = torch.timing(threads, width, "step_seconds", "best_step_seconds")
            {
                theirs[cell].push(step);
            }
            ours[cell].push(our_step(width, threads));
        }
    }

    match &torch {
        Ok(torch) => println!("PyTorch {} ({})", torch.version, torch.python),
        Err(reason) => println!("PyTorch: not measured ({reason})"),
    }
    println!(
        "one SGD step, MLP 784→w→w→10, batch {BATCH}, f32, ReLU, cross-entropy, {rounds} rounds"
    );
    let statistics: [Statistic; 2] = [
        ("median", |timing| timing.median, median),
        ("best", |timing| timing.best, smallest),
    ];
    for (statistic, pick, over_rounds) in statistics {
        println!();
        let summary = |timings: &[Timing]| -> f64 {
            over_rounds(&timings.iter().map(pick).collect::<Vec<_>>())
        };
        let ceiling_column: Vec<String> = thread_counts
            .iter()
            .zip(&ceilings)
            .map(|(threads, timings)| {
                format!("{:.1} on {threads}", MATMUL_FLOPS / summary(timings) / 1e9)
            })
            .collect();
        println!(
            "{statistic} step time; matrix-multiply ceiling (one 1024×4096 · 4096×4096 product, \
             the faster of our banded product and one gemm call), GFLOP/s: {}",
            ceiling_column.join(", ")
        );
        println!(
            "{:>6} {:>7} {:>11} {:>9} {:>12} {:>13} {:>10} {:>16}",
            "width",
            "threads",
            "ours ms",
            "GFLOP/s",
            "% of matmul",
            "PyTorch ms",
            "speed-up",
            "rounds' range"
        );
        for (cell, &(threads, width)) in cells.iter().enumerate() {
            let seconds = summary(&ours[cell]);
            let gflops = step_flops(width) / seconds / 1e9;
            let slot = thread_counts
                .iter()
                .position(|&t| t == threads)
                .unwrap_or(0);
            let ceiling = MATMUL_FLOPS / summary(&ceilings[slot]) / 1e9;
            let (torch_column, ratio_column, range_column) = if theirs[cell].is_empty() {
                ("—".to_string(), "—".to_string(), "—".to_string())
            } else {
                let torch_seconds = summary(&theirs[cell]);
                let ratios: Vec<f64> = theirs[cell]
                    .iter()
                    .zip(&ours[cell])
                    .map(|(theirs, ours)| pick(theirs) / pick(ours))
                    .collect();
                let low = smallest(&ratios);
                let high = ratios.iter().copied().fold(0.0, f64::max);
                (
                    format!("{:.3}", torch_seconds * 1e3),
                    format!("{:.2}×", torch_seconds / seconds),
                    format!("{low:.2}–{high:.2}×"),
                )
            };
            println!(
                "{width:>6} {threads:>7} {:>11.3} {gflops:>9.1} {:>11.0}% {torch_column:>13} {ratio_column:>10} {range_column:>16}",
                seconds * 1e3,
                100.0 * gflops / ceiling,
            );
        }
    }
    println!(
        "median: of each side's per-round medians; best: the fastest step of all rounds, the work \
         undisturbed by whatever else the host runs. speed-up = PyTorch's time / ours (above 1 \
         means we are faster); rounds' range: the lowest and highest ratio of one round's figures"
    );

    println!();
    println!("where a step's time goes (ms, best of each)");
    println!(
        "{:>6} {:>7} {:>9} {:>9} {:>16}",
        "width", "threads", "forward", "backward", "rest of the step"
    );
    for &threads in &thread_counts {
        for &width in &widths {
            let phases = step_phases(width, threads);
            println!(
                "{width:>6} {threads:>7} {:>9.3} {:>9.3} {:>16.3}",
                phases.forward * 1e3,
                (phases.forward_backward - phases.forward) * 1e3,
                (phases.step - phases.forward_backward) * 1e3,
            );
        }
    }
    println!(
        "(backward: forward and backward with the gradient stored, less the forward; rest: the \
         step less both, that is the batch copy and the bound that shows the parameters finite, \
         less the gradient's store that the step saves by folding it into the weights: it can \
         come out below zero)"
    );

    println!();
    println!("cost of the probe and the Hessian measurements relative to training (one trial)");
    println!(
        "{:>6} {:>7} {:>10} {:>10} {:>12} {:>14} {:>16}",
        "width", "threads", "train s", "probe s", "measure s", "probe / train", "measure / train"
    );
    for &threads in &thread_counts {
        for width in [64, 256] {
            let measured =
                run_trial_with_threads(&phase_cost_trial(width), &SilentObserver, threads)
                    .expect("the phase-cost trial runs");
            println!(
                "{width:>6} {threads:>7} {:>10.3} {:>10.3} {:>12.3} {:>14.2} {:>16.2}",
                measured.train_seconds,
                measured.probe_seconds,
                measured.measure_seconds,
                measured.probe_seconds / measured.train_seconds,
                measured.measure_seconds / measured.train_seconds,
            );
        }
    }
    println!(
        "(training: 400 steps of batch 128; probe: 4 replicates × 100 steps, each with 5 \
         snapshots (full-batch loss and gradient on 2,048 training and 1,024 test examples) and \
         20 full-batch gradient-descent steps of the same-basin test; measure: spectral norms, \
         margins, bounds, Hessian top-3 by 30 Lanczos steps and a 10-probe Hutchinson trace over \
         the training examples)"
    );
}

/// Multiply-adds of forward (X Wᵀ), weight gradients (Δᵀ X) and, below the first layer, the
/// back-propagated errors (Δ W), two flops each.
fn step_flops(width: usize) -> f64 {
    let layers = [(INPUT, width), (width, width), (width, CLASSES)];
    layers
        .iter()
        .enumerate()
        .map(|(index, &(fan_in, fan_out))| {
            let products = if index == 0 { 2.0 } else { 3.0 };
            products * 2.0 * (BATCH * fan_in * fan_out) as f64
        })
        .sum()
}

/// A table's name, the figure it takes from each timing, and how it summarises those figures over
/// the rounds.
type Statistic = (&'static str, fn(&Timing) -> f64, fn(&[f64]) -> f64);

fn step_network(width: usize, threads: usize) -> (Mlp, Dataset, Vec<f32>) {
    let mlp = Mlp::new(INPUT, width, CLASSES, 3, Activation::Relu, true).with_threads(threads);
    let dataset = random_dataset(8 * BATCH, INPUT, CLASSES, 3);
    let parameters = mlp.initialize(Init::He, &mut stream(3, Stream::Init));
    (mlp, dataset, parameters)
}

struct StepPhases {
    forward: f64,
    forward_backward: f64,
    step: f64,
}

fn step_phases(width: usize, threads: usize) -> StepPhases {
    on_threads(threads, || step_phases_on_threads(width, threads))
        .expect("the helper threads start")
}

fn step_phases_on_threads(width: usize, threads: usize) -> StepPhases {
    let (mlp, dataset, parameters) = step_network(width, threads);
    let mut workspace = Workspace::new(&mlp, BATCH);
    let mut gradient = vec![0.0; mlp.parameter_count()];
    let inputs = &dataset.inputs[..BATCH * INPUT];
    let labels = &dataset.labels[..BATCH];
    let forward = best_seconds(|| mlp.forward(&parameters, inputs, BATCH, &mut workspace));
    let forward_backward = best_seconds(|| {
        mlp.loss_and_gradient(&parameters, inputs, labels, &mut workspace, &mut gradient);
    });
    StepPhases {
        forward,
        forward_backward,
        step: our_step_on_threads(width, threads).best,
    }
}

/// A step's timing on `threads` threads, with a team of that many as in a trial.
fn our_step(width: usize, threads: usize) -> Timing {
    on_threads(threads, || our_step_on_threads(width, threads)).expect("the helper threads start")
}

fn our_step_on_threads(width: usize, threads: usize) -> Timing {
    let (mlp, dataset, parameters) = step_network(width, threads);
    let settings = SgdSettings {
        learning_rate: 0.01,
        momentum: 0.0,
        noise: NoiseSettings::silent(),
        batch_size: BATCH,
    };
    let mut sgd = NoisySgd::for_training(&mlp, parameters, &dataset, settings, 3);
    timing(|| {
        sgd.step(&mlp);
    })
}

/// A trial of the default sweep's shape on 784-dimensional inputs: every phase runs.
fn phase_cost_trial(width: usize) -> TrialConfig {
    let mut config = TrialConfig::example();
    config.seed = 1;
    config.data = DataConfig {
        teacher_width: 32,
        ..DataConfig::synthetic(DataSet::TeacherStudent, INPUT, CLASSES, 2048, 1024)
    };
    config.model.depth = 3;
    config.model.width = width;
    config.training.learning_rate = 0.05;
    config.training.momentum = 0.9;
    config.training.batch_size = BATCH;
    config.training.target_loss = None;
    config.training.max_steps = 400;
    config.training.eval_every = 100;
    config.probe.steps = 100;
    config.probe.learning_rate = Some(0.01);
    config.probe.radii = vec![0.1, 0.5, 1.0];
    config.probe.radius_unit = RadiusUnit::RelativeToMinimumNorm;
    config.probe.replicates = 4;
    config.probe.snapshots = 5;
    config.probe.basin_steps = 20;
    config
}
