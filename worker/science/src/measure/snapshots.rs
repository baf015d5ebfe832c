//! What the probe's snapshots say (science.md §3.6, §3.7, §3.9, §3.10): at evenly spaced steps of
//! each replicate, the loss excursion and the local-convexity ratio on train and test data; per
//! replicate, the shape of its snapshot cloud; at its end, the same-basin test and the barrier.

use crate::data::TrainTest;
use crate::measure::basin::{BARRIER_POINTS, gradient_descent, linear_barrier};
use crate::measure::cloud::{cloud_spectrum, random_walk_null, variance_share_in_subspace};
use crate::measure::probe::euclidean_distance;
use vocabulary::ProbeStatisticName;

use crate::measurements::ProbeStatistic;
use crate::model::evaluate::{FullGradient, evaluate};
use crate::model::mlp::{Mlp, Workspace};

/// Examples per chunk of the full-data-set passes.
const CHUNK: usize = 64;

/// Running min, max, sum and count; the share of positive values.
#[derive(Debug, Clone, Copy)]
struct Tally {
    min: f64,
    max: f64,
    sum: f64,
    positive: usize,
    count: usize,
}

impl Tally {
    fn new() -> Self {
        Self {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            positive: 0,
            count: 0,
        }
    }

    fn add(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.positive += usize::from(value > 0.0);
        self.count += 1;
    }

    fn or_nan(&self, value: f64) -> f64 {
        if self.count == 0 { f64::NAN } else { value }
    }

    fn mean(&self) -> f64 {
        self.or_nan(self.sum / self.count as f64)
    }

    fn positive_share(&self) -> f64 {
        self.or_nan(self.positive as f64 / self.count as f64)
    }
}

/// Accumulates the snapshot statistics of every replicate of one probe.
pub struct SnapshotStatistics<'a> {
    mlp: &'a Mlp,
    minimum: &'a [f32],
    data: &'a TrainTest,
    full: FullGradient,
    base_loss: [f64; 2],
    excursion: [Tally; 2],
    convexity: [Tally; 2],
    snapshots: Vec<Vec<f32>>,
    /// The steps of the latest replicate's snapshots (every replicate takes the same ones).
    snapshot_steps: Vec<u64>,
    participation_ratio: Tally,
    components_for_90_percent: Tally,
    top_two_share: Tally,
    hessian_basis: &'a [Vec<f64>],
    hessian_aligned_share: Tally,
    returned: Tally,
    barrier: Tally,
}

impl<'a> SnapshotStatistics<'a> {
    /// `evaluations`: whether [`SnapshotStatistics::evaluate`] will be called; without any the
    /// losses at Θ̂ they are compared with are not computed. `hessian_basis`: the top Hessian
    /// eigenvectors at Θ̂ (may be empty), for the share of each cloud's variance along them.
    pub fn new(
        mlp: &'a Mlp,
        minimum: &'a [f32],
        data: &'a TrainTest,
        evaluations: bool,
        hessian_basis: &'a [Vec<f64>],
    ) -> Self {
        let mut full = FullGradient::new(mlp, CHUNK.min(data.train.len().max(data.test.len())));
        let base_loss = if evaluations {
            [
                full.compute(mlp, minimum, &data.train),
                full.compute(mlp, minimum, &data.test),
            ]
        } else {
            [f64::NAN; 2]
        };
        Self {
            mlp,
            minimum,
            data,
            full,
            base_loss,
            excursion: [Tally::new(); 2],
            convexity: [Tally::new(); 2],
            snapshots: Vec::new(),
            snapshot_steps: Vec::new(),
            participation_ratio: Tally::new(),
            components_for_90_percent: Tally::new(),
            top_two_share: Tally::new(),
            hessian_basis,
            hessian_aligned_share: Tally::new(),
            returned: Tally::new(),
            barrier: Tally::new(),
        }
    }

    /// Keeps the snapshot Θ_t of step `step` for the replicate's cloud.
    pub fn keep(&mut self, step: u64, parameters: &[f32]) {
        if self.snapshots.is_empty() {
            self.snapshot_steps.clear();
        }
        self.snapshots.push(parameters.to_vec());
        self.snapshot_steps.push(step);
    }

    /// Evaluates R̂(Θ_t) − R̂(Θ̂) and ⟨∇R̂(Θ_t), Θ_t − Θ̂⟩ / ||Θ_t − Θ̂||² at Θ_t on train and test
    /// data.
    pub fn evaluate(&mut self, parameters: &[f32]) {
        let distance = euclidean_distance(parameters, self.minimum);
        for (side, dataset) in [&self.data.train, &self.data.test].into_iter().enumerate() {
            let loss = self.full.compute(self.mlp, parameters, dataset);
            self.excursion[side].add(loss - self.base_loss[side]);
            if distance > 0.0 {
                let inner: f64 = self
                    .full
                    .gradient()
                    .iter()
                    .zip(parameters.iter().zip(self.minimum))
                    .map(|(&g, (&p, &m))| f64::from(g) * (f64::from(p) - f64::from(m)))
                    .sum();
                self.convexity[side].add(inner / (distance * distance));
            }
        }
    }

    /// Closes a replicate that ended at `end`: the shape of its snapshot cloud; then, with
    /// `basin_steps` > 0, whether gradient descent (step `learning_rate`) from `end` comes back
    /// within `radius` of Θ̂, and the loss barrier on the segment from Θ̂ to `end`.
    pub fn finish_replicate(
        &mut self,
        end: &[f32],
        basin_steps: u32,
        learning_rate: f32,
        radius: f64,
    ) {
        let snapshots = std::mem::take(&mut self.snapshots);
        if snapshots.len() >= 2
            && let Ok(cloud) = cloud_spectrum(&snapshots, 0)
            && cloud.participation_ratio.is_finite()
        {
            self.participation_ratio.add(cloud.participation_ratio);
            self.components_for_90_percent
                .add(cloud.components_for_90_percent as f64);
            self.top_two_share.add(cloud.top_two_share);
            if !self.hessian_basis.is_empty() {
                self.hessian_aligned_share
                    .add(variance_share_in_subspace(&snapshots, self.hessian_basis));
            }
        }
        drop(snapshots);
        if basin_steps == 0 {
            return;
        }
        let (mlp, train) = (self.mlp, &self.data.train);
        let mut workspace = Workspace::new(mlp, CHUNK.min(train.len()));
        self.barrier.add(linear_barrier(
            |point| evaluate(mlp, point, train, &mut workspace, None).loss,
            self.minimum,
            end,
            BARRIER_POINTS,
        ));
        let mut descended = end.to_vec();
        let full = &mut self.full;
        let finite = gradient_descent(
            |point, gradient| {
                full.compute(mlp, point, train);
                gradient.copy_from_slice(full.gradient());
            },
            &mut descended,
            learning_rate,
            basin_steps,
        );
        let back = finite && euclidean_distance(&descended, self.minimum) <= radius;
        self.returned.add(if back { 1.0 } else { 0.0 });
    }

    /// The statistics measured, in catalog order.
    pub fn into_statistics(self) -> Vec<ProbeStatistic> {
        let [train_excursion, test_excursion] = self.excursion;
        let [train_convexity, test_convexity] = self.convexity;
        let mut statistics = Vec::new();
        let mut push = |name: ProbeStatisticName, tally: &Tally, value: f64| {
            if tally.count > 0 {
                statistics.push(ProbeStatistic { name, value });
            }
        };
        push(
            ProbeStatisticName::LossExcursionMaxTrain,
            &train_excursion,
            train_excursion.max,
        );
        push(
            ProbeStatisticName::LossExcursionMeanTrain,
            &train_excursion,
            train_excursion.mean(),
        );
        push(
            ProbeStatisticName::LossExcursionMaxTest,
            &test_excursion,
            test_excursion.max,
        );
        push(
            ProbeStatisticName::LossExcursionMeanTest,
            &test_excursion,
            test_excursion.mean(),
        );
        let ratio = &self.participation_ratio;
        push(ProbeStatisticName::ParticipationRatio, ratio, ratio.mean());
        let k90 = &self.components_for_90_percent;
        push(ProbeStatisticName::ComponentsFor90Percent, k90, k90.mean());
        push(
            ProbeStatisticName::TopTwoShare,
            &self.top_two_share,
            self.top_two_share.mean(),
        );
        let null = (self.snapshot_steps.len() >= 2)
            .then(|| random_walk_null(&self.snapshot_steps).ok())
            .flatten();
        let with_null = Tally {
            count: usize::from(null.is_some()),
            ..Tally::new()
        };
        let count = self.snapshot_steps.len() as f64;
        push(ProbeStatisticName::SnapshotCount, &with_null, count);
        if let Some(null) = null {
            push(
                ProbeStatisticName::NullParticipationRatio,
                &with_null,
                null.participation_ratio,
            );
            push(
                ProbeStatisticName::NullTopTwoShare,
                &with_null,
                null.top_two_share,
            );
        }
        push(
            ProbeStatisticName::HessianAlignedShare,
            &self.hessian_aligned_share,
            self.hessian_aligned_share.mean(),
        );
        push(
            ProbeStatisticName::ConvexityMinTrain,
            &train_convexity,
            train_convexity.min,
        );
        push(
            ProbeStatisticName::ConvexityMinTest,
            &test_convexity,
            test_convexity.min,
        );
        push(
            ProbeStatisticName::ConvexityPositiveShareTrain,
            &train_convexity,
            train_convexity.positive_share(),
        );
        push(
            ProbeStatisticName::ConvexityPositiveShareTest,
            &test_convexity,
            test_convexity.positive_share(),
        );
        push(
            ProbeStatisticName::BasinReturnShare,
            &self.returned,
            self.returned.mean(),
        );
        push(
            ProbeStatisticName::LinearBarrier,
            &self.barrier,
            self.barrier.mean(),
        );
        statistics
    }
}
