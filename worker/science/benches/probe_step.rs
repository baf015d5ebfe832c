//! What a probe step costs beside a training step of the same network and batch, at the default
//! sweep's shape (`examples/width-sweep.toml`: 20 → w → 4, batch 32, one thread, as each of the
//! sweep's two workers runs), phase by phase, each beside its FLOP count at the machine's
//! measured matrix-multiply ceiling and beside PyTorch doing the same work (issue 16: a probe
//! step ≤ 1.3× a training step, every phase faster than PyTorch).
//!
//! `cargo bench -p science --bench probe_step` prints, per width:
//! - the training step (forward, backward, momentum-free update, no noise);
//! - the same step with the probe's Gaussian gradient noise (one draw per coordinate);
//! - what the probe adds after each step: Θ_t − Θ̂ with its length, its projection on 3
//!   orthonormal vectors (the Hessian's top ones), and the layer excursions;
//! - the probe step: a noisy step and its tracking one after the other, as a trial runs them,
//!   and its ratio to the training step;
//! - one Hessian-vector product over all the examples, over its FLOP count at the ceiling;
//! - what a probe replicate does besides its steps, each beside its FLOP count at the ceiling: a
//!   snapshot evaluation (the full gradient over the training and the test set, for the loss
//!   excursion and the local convexity) and the replicate's close (its snapshot cloud, the loss
//!   barrier from Θ̂ to its end, and gradient descent back towards Θ̂), at the probe's defaults;
//!   and the share of a replicate's time (steps, evaluations, close) each takes;
//! - the measurements at Θ̂ at the defaults, each beside its FLOP count at the ceiling: Lanczos
//!   (its products and its reorthogonalisation), Hutchinson's trace, the flatness search, the
//!   layers' norms by power iteration, and ||U₀X||_F;
//! - PyTorch's training step, probe step and HVP (`benches/torch_probe_step.py`, kept running and
//!   asked once per width in every round, right after ours), where torch is installed.
//!
//! Each figure is the median over `PROBE_STEP_ROUNDS` rounds (default 3) of each round's best
//! time, the phases of one width timed back to back in each round. `PROBE_STEP_WIDTHS=16,4096`
//! narrows the widths.

mod common;

use common::{
    MATMUL_FLOPS, PyTorch, list_from_env, matmul_timing, median, random_dataset, random_vector,
    timing,
};
use science::data::TrainTest;
use science::measure::basin::BARRIER_POINTS;
use science::measure::excursion::LayerExcursions;
use science::measure::flatness::{SIGMA_GRID_SIZE, measure_flatness};
use science::measure::layers::measure_layers;
use science::measure::network_norms::initial_image_frobenius;
use science::measure::snapshots::SnapshotStatistics;
use science::measure::spectrum::{hutchinson_trace, lanczos};
use science::measure::step_displacement::StepDisplacement;
use science::model::hvp::HessianOperator;
use science::model::mlp::Mlp;
use science::rng::{Stream, stream};
use science::train::noise::NoiseSettings;
use science::train::sgd::{NoisySgd, SgdSettings};
use vocabulary::trial_config::{
    DEFAULT_BASIN_STEPS, DEFAULT_PROBE_SNAPSHOTS, DEFAULT_SNAPSHOT_EVALUATIONS,
};
use vocabulary::{Activation, Init, MeasureConfig, NoiseForm};

const INPUT: usize = 20;
const CLASSES: usize = 4;
const BATCH: usize = 32;
const EXAMPLES: usize = 1024;
/// The default sweep's test set (`data.test_size`), which snapshot evaluations also read.
const TEST_EXAMPLES: usize = 4096;
/// The default sweep's probe steps per replicate (`probe.steps`).
const PROBE_STEPS: usize = 1000;
/// Examples per chunk of a Hessian-vector product (`measure::hessian_summary`'s).
const HVP_CHUNK: usize = 64;
/// Top Hessian vectors the probe projects on (`measure.hessian_top_k` by default).
const TOP_VECTORS: usize = 3;

/// The phases of one round at one width, seconds (each the best of its repetitions).
struct Round {
    train: f64,
    noisy: f64,
    tracking: f64,
    probe: f64,
    /// One Hessian-vector product over all the examples.
    hvp: f64,
    /// The Hessian summary's two halves at the defaults: Lanczos for the top eigenvalues,
    /// Hutchinson's trace.
    lanczos: f64,
    hutchinson: f64,
    /// The flatness search at the default draws, on the bench's data.
    flatness: f64,
    /// Every layer's spectral norm and distance from the initialisation, at the default power
    /// iterations.
    layer_norms: f64,
    /// ||U₀X||_F over the training inputs.
    image_norm: f64,
    /// One snapshot evaluation: the full gradient over the training and the test set.
    evaluation: f64,
    /// One replicate's close: snapshot cloud, barrier and descent at the defaults.
    close: f64,
    /// PyTorch's training step, probe step and Hessian-vector product, where it runs.
    torch: Option<[f64; 3]>,
}

fn main() {
    let widths = list_from_env("PROBE_STEP_WIDTHS", &[16, 64, 256, 1024, 4096]);
    let rounds = list_from_env("PROBE_STEP_ROUNDS", &[3])[0].max(1);
    let mut ceilings = Vec::new();
    let mut measured: Vec<Vec<Round>> = widths.iter().map(|_| Vec::new()).collect();
    let mut torch = PyTorch::start("torch_probe_step.py", &[]);
    for _ in 0..rounds {
        ceilings.push(matmul_timing(1).best);
        for (index, &width) in widths.iter().enumerate() {
            let mut ours = round(width);
            ours.torch = torch
                .as_mut()
                .ok()
                .and_then(|torch| torch_round(torch, width));
            measured[index].push(ours);
        }
    }
    let ceiling = MATMUL_FLOPS / median(&ceilings) / 1e9;
    println!(
        "probe step against training step, MLP {INPUT}→w→{CLASSES}, batch {BATCH}, f32, one \
         thread, {rounds} rounds (median of each round's best); matrix-multiply ceiling \
         {ceiling:.1} GFLOP/s"
    );
    println!(
        "{:>6} {:>9} {:>10} {:>10} {:>12} {:>11} {:>12} {:>10} {:>13}",
        "width",
        "params",
        "train ms",
        "at ceiling",
        "noisy ms",
        "noise ms",
        "tracking ms",
        "probe ms",
        "probe / train"
    );
    for (index, &width) in widths.iter().enumerate() {
        let of = |pick: fn(&Round) -> f64| median_of(&measured[index], pick);
        let (train, noisy, tracking) = (of(|r| r.train), of(|r| r.noisy), of(|r| r.tracking));
        let probe = of(|r| r.probe);
        let at_ceiling = step_flops(width) / (ceiling * 1e9);
        println!(
            "{width:>6} {:>9} {:>10.4} {:>10.4} {:>12.4} {:>11.4} {:>12.4} {:>10.4} {:>12.2}×",
            network(width).parameter_count(),
            train * 1e3,
            at_ceiling * 1e3,
            noisy * 1e3,
            (noisy - train) * 1e3,
            tracking * 1e3,
            probe * 1e3,
            probe / train,
        );
    }
    println!(
        "at ceiling: the step's multiply-adds (forward, weight gradients, the second layer's \
         back-propagated errors; two flops each) at the ceiling; noise: the noisy step less the \
         training step; tracking: what the probe computes after each step, alone; probe: a noisy step \
         and its tracking, one after the other as in a trial"
    );
    println!();
    match &torch {
        Ok(torch) => println!(
            "beside PyTorch {} ({}), same work, one thread",
            torch.version, torch.python
        ),
        Err(reason) => println!("PyTorch: not measured ({reason})"),
    }
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>13}",
        "width",
        "train ms",
        "torch",
        "ratio",
        "probe ms",
        "torch",
        "ratio",
        "hvp ms",
        "torch",
        "ratio",
        "hvp/ceiling",
        "hessian ms",
        "hessian/hvps"
    );
    let measure = MeasureConfig::default();
    let products = f64::from(measure.lanczos_steps) + f64::from(measure.hutchinson_probes);
    for (index, &width) in widths.iter().enumerate() {
        let of = |pick: fn(&Round) -> f64| median_of(&measured[index], pick);
        let theirs = |which: usize| {
            let values: Vec<f64> = measured[index]
                .iter()
                .filter_map(|round| round.torch.map(|torch| torch[which]))
                .collect();
            (!values.is_empty()).then(|| median(&values))
        };
        let mut line = format!("{width:>6}");
        for (which, ours) in [of(|r| r.train), of(|r| r.probe), of(|r| r.hvp)]
            .into_iter()
            .enumerate()
        {
            let (torch_ms, ratio) = match theirs(which) {
                Some(seconds) => (
                    format!("{:.4}", seconds * 1e3),
                    format!("{:.2}×", seconds / ours),
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            line += &format!(" {:>10.4} {torch_ms:>10} {ratio:>10}", ours * 1e3);
        }
        let hvp_at_ceiling = hvp_flops(width) / (ceiling * 1e9);
        println!(
            "{line} {:>10.2}× {:>11.2} {:>12.2}×",
            of(|r| r.hvp) / hvp_at_ceiling,
            of(|r| r.lanczos + r.hutchinson) * 1e3,
            of(|r| r.lanczos + r.hutchinson) / (products * of(|r| r.hvp)),
        );
    }
    println!(
        "ratio: PyTorch's time over ours (above 1: ours is faster); hvp: one Hessian-vector \
         product of the loss over all {EXAMPLES} examples (ours: R-operator passes in chunks of 64; \
         PyTorch: double backward); hvp/ceiling: ours over its multiply-adds at the ceiling; \
         hessian: the Hessian summary at Θ̂ with the default 30 Lanczos steps and 10 Hutchinson \
         probes, over the time of its 40 products (above 1: the Lanczos vectors' own work)"
    );
    println!();
    println!(
        "a probe replicate beside its steps, at the probe's defaults ({PROBE_STEPS} steps, \
         {DEFAULT_SNAPSHOT_EVALUATIONS} snapshot evaluations, {DEFAULT_PROBE_SNAPSHOTS} snapshots, \
         {DEFAULT_BASIN_STEPS} descent steps), {TEST_EXAMPLES} test examples"
    );
    println!(
        "{:>6} {:>14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>13} {:>9}",
        "width",
        "evaluation ms",
        "at ceiling",
        "ratio",
        "close ms",
        "at ceiling",
        "ratio",
        "steps",
        "evaluations",
        "close"
    );
    for (index, &width) in widths.iter().enumerate() {
        let of = |pick: fn(&Round) -> f64| median_of(&measured[index], pick);
        let (evaluation, close) = (of(|r| r.evaluation), of(|r| r.close));
        let evaluation_at_ceiling = evaluation_flops(width) / (ceiling * 1e9);
        let close_at_ceiling = close_flops(width) / (ceiling * 1e9);
        let steps = PROBE_STEPS as f64 * of(|r| r.probe);
        let evaluations = f64::from(DEFAULT_SNAPSHOT_EVALUATIONS) * evaluation;
        let replicate = steps + evaluations + close;
        println!(
            "{width:>6} {:>14.3} {:>10.3} {:>9.2}× {:>10.3} {:>10.3} {:>9.2}× {:>8.0}% {:>12.0}% \
             {:>8.0}%",
            evaluation * 1e3,
            evaluation_at_ceiling * 1e3,
            evaluation / evaluation_at_ceiling,
            close * 1e3,
            close_at_ceiling * 1e3,
            close / close_at_ceiling,
            100.0 * steps / replicate,
            100.0 * evaluations / replicate,
            100.0 * close / replicate,
        );
    }
    println!(
        "evaluation: R̂ and ∇R̂ over the training and the test set at a probe point (the loss \
         excursion and the local convexity); close: the cloud of the replicate's snapshots, the \
         loss on {BARRIER_POINTS} points from Θ̂ to its end and {DEFAULT_BASIN_STEPS} steps of \
         full-batch gradient descent; at ceiling: their multiply-adds at the ceiling; steps, \
         evaluations, close: their shares of one replicate's time"
    );
    println!();
    println!("the measurements at Θ̂ at the defaults, each over its FLOP count at the ceiling");
    println!(
        "{:>6} {:>11} {:>7} {:>14} {:>7} {:>12} {:>7} {:>15} {:>7} {:>13} {:>7}",
        "width",
        "lanczos ms",
        "ratio",
        "hutchinson ms",
        "ratio",
        "flatness ms",
        "ratio",
        "layer norms ms",
        "ratio",
        "||U₀X|| ms",
        "ratio"
    );
    let at_ceiling = |flops: f64| flops / (ceiling * 1e9);
    for (index, &width) in widths.iter().enumerate() {
        let of = |pick: fn(&Round) -> f64| median_of(&measured[index], pick);
        let mut line = format!("{width:>6}");
        for (seconds, flops, column) in [
            (of(|r| r.lanczos), lanczos_flops(width, &measure), 11),
            (of(|r| r.hutchinson), hutchinson_flops(width, &measure), 14),
            (of(|r| r.flatness), flatness_flops(width, &measure), 12),
            (of(|r| r.layer_norms), layer_norm_flops(width, &measure), 15),
            (of(|r| r.image_norm), image_norm_flops(width), 13),
        ] {
            line += &format!(
                " {:>column$.2} {:>6.2}×",
                seconds * 1e3,
                seconds / at_ceiling(flops)
            );
        }
        println!("{line}");
    }
    println!(
        "lanczos: {} steps, its products and its twice-repeated reorthogonalisation against every \
         earlier vector (f64, two flops a multiply-add); hutchinson: {} products; flatness: the \
         forward passes of the bisection over the σ grid ({} evaluations of {} draws on 512 \
         examples) and of the error increase on all {EXAMPLES}, the Gaussian draws not counted; \
         layer norms: {} power iterations on each layer's weights and on its distance from the \
         initialisation; ||U₀X||: the two Gram matrices of its {INPUT} input features",
        measure.lanczos_steps,
        measure.hutchinson_probes,
        flatness_evaluations(),
        measure.flatness_draws,
        measure.power_iterations,
    );
}

/// Parameters of the bench's network at `width`, as flops are counted over them.
fn dimension(width: usize) -> f64 {
    network(width).parameter_count() as f64
}

/// Lanczos at the defaults: one HVP a step; per step j, its α and β, two passes of
/// reorthogonalisation against the j + 1 vectors so far (a dot product and a subtraction each) and
/// the norm; then the Ritz vectors.
fn lanczos_flops(width: usize, measure: &MeasureConfig) -> f64 {
    let steps = f64::from(measure.lanczos_steps);
    let dimension = dimension(width);
    let reorthogonalisation = 2.0 * 4.0 * dimension * steps * (steps + 1.0) / 2.0;
    let per_step = 8.0 * dimension;
    let ritz = f64::from(measure.hessian_top_k) * steps * 2.0 * dimension;
    steps * (hvp_flops(width) + per_step) + reorthogonalisation + ritz
}

/// Hutchinson's trace: a product and a dot product per probe.
fn hutchinson_flops(width: usize, measure: &MeasureConfig) -> f64 {
    f64::from(measure.hutchinson_probes) * (hvp_flops(width) + 2.0 * dimension(width))
}

/// Evaluations of the bisection over the σ grid: ⌈log₂(grid + 1)⌉.
fn flatness_evaluations() -> u32 {
    (SIGMA_GRID_SIZE + 1).next_power_of_two().trailing_zeros()
}

/// The flatness search's forward passes (two flops a multiply-add) and its perturbations of the
/// parameters (a multiply and an add each).
fn flatness_flops(width: usize, measure: &MeasureConfig) -> f64 {
    let forward = 2.0 * (INPUT * width + width * CLASSES) as f64;
    let draws = f64::from(measure.flatness_draws);
    let evaluations = f64::from(flatness_evaluations());
    let examples = draws * (evaluations * 512.0 + EXAMPLES as f64);
    examples * forward + draws * (evaluations + 1.0) * 2.0 * dimension(width)
}

/// Two spectral norms per layer (the weights and their distance from the initialisation), each
/// a product with W and one with Wᵀ per iteration and a last product with W.
fn layer_norm_flops(width: usize, measure: &MeasureConfig) -> f64 {
    let entries = (INPUT * width + width * CLASSES) as f64;
    2.0 * (2.0 * f64::from(measure.power_iterations) + 1.0) * 2.0 * entries
}

/// The Gram matrices of the inputs and of the first layer's rows, d² multiply-adds a row.
fn image_norm_flops(width: usize) -> f64 {
    2.0 * ((EXAMPLES + width) * INPUT * INPUT) as f64
}

/// The median over rounds of one figure.
fn median_of(rounds: &[Round], pick: fn(&Round) -> f64) -> f64 {
    median(&rounds.iter().map(pick).collect::<Vec<_>>())
}

/// PyTorch's figures for `width`, or none (with the reason on stderr) where the script fails.
fn torch_round(torch: &mut PyTorch, width: usize) -> Option<[f64; 3]> {
    let record = match torch.ask(1, width) {
        Ok(record) => record,
        Err(reason) => {
            eprintln!("PyTorch at width {width}: {reason}");
            return None;
        }
    };
    let field = |name: &str| record[name].as_f64();
    Some([
        field("train_step_seconds")?,
        field("probe_step_seconds")?,
        field("hvp_seconds")?,
    ])
}

fn network(width: usize) -> Mlp {
    Mlp::new(INPUT, width, CLASSES, 2, Activation::Relu, true)
}

/// Multiply-adds of forward (X Wᵀ) and weight gradients (Δᵀ X) of both layers, and the
/// second layer's back-propagated errors (Δ W), two flops each.
fn step_flops(width: usize) -> f64 {
    let first = (BATCH * INPUT * width) as f64;
    let second = (BATCH * width * CLASSES) as f64;
    2.0 * (2.0 * first + 3.0 * second)
}

/// Flops of the full gradient over `examples` examples: the training step's, per example.
fn full_gradient_flops(width: usize, examples: usize) -> f64 {
    step_flops(width) * examples as f64 / BATCH as f64
}

/// Flops of a snapshot evaluation: the full gradient over the training and the test set.
fn evaluation_flops(width: usize) -> f64 {
    full_gradient_flops(width, EXAMPLES + TEST_EXAMPLES)
}

/// Flops of a replicate's close: the forward passes of the barrier's points over the training
/// set, the descent's full gradients, and the cloud (the snapshots' Gram matrix, and their
/// projections on the top Hessian vectors), two flops a multiply-add.
fn close_flops(width: usize) -> f64 {
    let forward = 2.0 * (EXAMPLES * (INPUT * width + width * CLASSES)) as f64;
    let dimension = network(width).parameter_count() as f64;
    let snapshots = f64::from(DEFAULT_PROBE_SNAPSHOTS);
    let cloud = 2.0 * dimension * snapshots * ((snapshots + 1.0) / 2.0 + TOP_VECTORS as f64);
    BARRIER_POINTS as f64 * forward
        + f64::from(DEFAULT_BASIN_STEPS) * full_gradient_flops(width, EXAMPLES)
        + cloud
}

/// Multiply-adds of one Hessian-vector product over all the examples by the R-operator, two
/// flops each: forward W a and V a, and W R{a} after the first layer; backward R{δ}ᵀ a, and
/// δᵀ R{a}, R{δ} W and δ V after it (`model::hvp`). δ W is not formed: a ReLU network's first
/// layer needs only R{δ}.
fn hvp_flops(width: usize) -> f64 {
    let first = (EXAMPLES * INPUT * width) as f64;
    let second = (EXAMPLES * width * CLASSES) as f64;
    2.0 * (3.0 * first + 7.0 * second)
}

fn round(width: usize) -> Round {
    let mlp = network(width);
    let dataset = random_dataset(EXAMPLES, INPUT, CLASSES, 5);
    let minimum = mlp.initialize(Init::He, &mut stream(5, Stream::Init));
    let settings = |sigma: f64| SgdSettings {
        learning_rate: 0.01,
        momentum: 0.0,
        noise: NoiseSettings {
            sigma,
            form: NoiseForm::PerCoordinate,
            inverse_temperature: None,
        },
        batch_size: BATCH,
    };
    let step_time = |sigma: f64| {
        let mut sgd = NoisySgd::for_training(&mlp, minimum.clone(), &dataset, settings(sigma), 5);
        timing(|| {
            sgd.step(&mlp);
        })
        .best
    };
    let train = step_time(0.0);
    let noisy = step_time(0.01);

    let dimension = mlp.parameter_count();
    let point: Vec<f32> = minimum
        .iter()
        .zip(random_vector(dimension, 6))
        .map(|(m, z)| m + 1e-3 * z)
        .collect();
    let top: Vec<Vec<f64>> = (0..TOP_VECTORS as u64)
        .map(|index| {
            let vector: Vec<f64> = random_vector(dimension, 10 + index)
                .into_iter()
                .map(f64::from)
                .collect();
            let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
            vector.into_iter().map(|v| v / norm).collect()
        })
        .collect();
    let mut displacement = StepDisplacement::new(dimension, &top);
    let mut excursions = LayerExcursions::new(&mlp, &mut stream(5, Stream::ProbeExcursion));
    let tracking = timing(|| {
        let measured = displacement.update(&point, &minimum);
        excursions.observe_displacement(&mlp, displacement.values());
        std::hint::black_box(measured);
    })
    .best;
    // The probe's loop itself: each noisy step followed by its tracking, the two sharing the
    // caches as they do in a trial.
    let mut sgd = NoisySgd::for_training(&mlp, minimum.clone(), &dataset, settings(0.01), 5);
    let probe = timing(|| {
        sgd.step(&mlp);
        let measured = displacement.update(sgd.parameters(), &minimum);
        excursions.observe_displacement(&mlp, displacement.values());
        std::hint::black_box(measured);
    })
    .best;
    let mut operator =
        HessianOperator::new(&mlp, &minimum, &dataset.inputs, &dataset.labels, HVP_CHUNK);
    let direction: Vec<f64> = random_vector(dimension, 20)
        .into_iter()
        .map(f64::from)
        .collect();
    let mut product = vec![0.0; dimension];
    let hvp = timing(|| operator.apply(&direction, &mut product)).best;
    let measure = MeasureConfig::default();
    let lanczos = timing(|| {
        let spectrum = lanczos(
            &mut operator,
            measure.hessian_top_k as usize,
            measure.lanczos_steps as usize,
            &mut stream(5, Stream::HessianLanczos),
        );
        std::hint::black_box(spectrum.is_ok());
    })
    .best;
    let hutchinson = timing(|| {
        std::hint::black_box(hutchinson_trace(
            &mut operator,
            measure.hutchinson_probes as usize,
            &mut stream(5, Stream::HessianTrace),
        ));
    })
    .best;
    let flatness = timing(|| {
        std::hint::black_box(measure_flatness(
            &mlp,
            &point,
            &dataset,
            measure.flatness_draws,
            5,
        ));
    })
    .best;
    let layer_norms = timing(|| {
        std::hint::black_box(measure_layers(
            &mlp,
            &point,
            &minimum,
            measure.power_iterations,
            &mut stream(5, Stream::PowerIteration),
        ));
    })
    .best;
    let image_norm = timing(|| {
        std::hint::black_box(initial_image_frobenius(&mlp, &minimum, &dataset.inputs));
    })
    .best;
    let data = TrainTest {
        train: dataset,
        test: random_dataset(TEST_EXAMPLES, INPUT, CLASSES, 7),
    };
    let evaluation = {
        let mut statistics = SnapshotStatistics::new(&mlp, &minimum, &data, true, &top);
        timing(|| statistics.evaluate(&point)).best
    };
    // Snapshots spread around the point, as a replicate's are along its path.
    let snapshots: Vec<Vec<f32>> = (0..u64::from(DEFAULT_PROBE_SNAPSHOTS))
        .map(|index| {
            point
                .iter()
                .zip(random_vector(dimension, 30 + index))
                .map(|(p, z)| p + 1e-3 * z)
                .collect()
        })
        .collect();
    let close = {
        let mut statistics = SnapshotStatistics::new(&mlp, &minimum, &data, false, &top);
        timing(|| {
            for (step, snapshot) in (1..).zip(&snapshots) {
                statistics.keep(step, snapshot);
            }
            statistics.finish_replicate(&point, DEFAULT_BASIN_STEPS, 0.01, 1.0);
        })
        .best
    };
    Round {
        train,
        noisy,
        tracking,
        probe,
        hvp,
        lanczos,
        hutchinson,
        flatness,
        layer_norms,
        image_norm,
        evaluation,
        close,
        torch: None,
    }
}
