//! The measurement catalog: every number a trial stores, named once.
//!
//! Each [`Measurement`] is a column of the `trial_results` view, with where it is stored
//! ([`Source`]), how it reads ([`Kind`], [`Unit`], label and table header) and where the reports
//! use it ([`Uses`]). The view itself, the export columns, the report's lists and the RPC's name
//! checks are all derived from [`catalog`], so adding a measurement is one entry here plus the
//! code that computes it. Bounds and probe statistics are typed names ([`BoundName`],
//! [`ProbeStatisticName`]): the worker reports them by variant, the wire carries their text, and
//! the coordinator refuses a text that names none of them.

use std::sync::OnceLock;

/// Where the reports use a measurement; a set of the flags below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses(u8);

impl Uses {
    pub const NONE: Uses = Uses(0);
    /// Summarised per width (mean and standard deviation over seeds) in every report.
    pub const REPORTED: Uses = Uses(1);
    /// Its exponent in width and its rank correlation with the gap are computed.
    pub const ANALYSED: Uses = Uses(1 << 1);
    /// Drawn against width in the headline figure.
    pub const PLOTTED: Uses = Uses(1 << 2);
    /// Aggregated per cell of width crossed with each other varied axis.
    pub const CELL: Uses = Uses(1 << 3);
    /// A column of the terminal, Markdown and dashboard tables (under its header).
    pub const TABLE: Uses = Uses(1 << 4);

    pub const fn and(self, other: Uses) -> Uses {
        Uses(self.0 | other.0)
    }

    pub const fn contains(self, other: Uses) -> bool {
        self.0 & other.0 == other.0
    }
}

/// How a column's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Identity, state and JSON columns.
    Text,
    /// A number; non-finite values are stored as NULL.
    Number,
    /// A truth value (a boolean on PostgreSQL, an integer on SQLite), read as 0 or 1.
    Flag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Dimensionless and of any sign: a ratio, an exponent, a configuration value.
    None,
    /// A probability, a share or a 0-1 error rate: in [0, 1].
    Share,
    /// A gap between error rates, or an estimate of one.
    ErrorRate,
    /// A loss value or a difference of two.
    Loss,
    /// A distance or norm in parameter space.
    ParameterDistance,
    /// SGD steps.
    Steps,
    Seconds,
    Milliseconds,
    /// A capacity C whose gap estimate is sqrt(C / m).
    Capacity,
    /// A curvature (Hessian eigenvalue or trace).
    Curvature,
}

impl Unit {
    /// Whether a finite value can be a measurement in this unit. Non-finite values are not
    /// judged here: they mean "not measured" and are stored as NULL.
    pub fn admits(self, value: f64) -> bool {
        match self {
            Unit::Share => (0.0..=1.0).contains(&value),
            Unit::Loss
            | Unit::ParameterDistance
            | Unit::Steps
            | Unit::Seconds
            | Unit::Milliseconds
            | Unit::Capacity => value >= 0.0,
            Unit::None | Unit::ErrorRate | Unit::Curvature => true,
        }
    }
}

/// Where a column's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A column of `trials` (the sweep's grid point and its bookkeeping).
    Trial(&'static str),
    /// A column of `results`.
    Result(&'static str),
    /// A column of `probe_radii` for the radius of this 0-based index.
    Radius { index: u8, column: &'static str },
    /// The gap estimate sqrt(capacity / m) of a row of `bounds`.
    Bound(BoundName),
    /// A row of `probe_statistics`.
    ProbeStatistic(ProbeStatisticName),
}

/// One column of the `trial_results` view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Its name in the view, the exports and the reports.
    pub column: &'static str,
    pub source: Source,
    pub kind: Kind,
    pub unit: Unit,
    /// What figures and the analysis table call it.
    pub label: &'static str,
    /// The table's short header; empty unless it has [`Uses::TABLE`].
    pub header: &'static str,
    pub uses: Uses,
}

impl Measurement {
    /// A diagnostic that is not a proven bound (the stagnation-localized one, science.md §4):
    /// its label says so, and every table that reads it repeats it.
    pub fn is_heuristic(&self) -> bool {
        self.label.ends_with("(heuristic)")
    }
}

/// Text names of a closed set, with their catalog columns: one line per member.
macro_rules! catalogued_names {
    (
        $(#[$meta:meta])*
        pub enum $Name:ident ($source:ident, column suffix $suffix:literal) {
            $($(#[$variant_meta:meta])* $Variant:ident = $text:literal, $unit:expr, $label:literal, $uses:expr;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $Name {
            $($(#[$variant_meta])* $Variant,)+
        }

        impl $Name {
            /// Every member, in catalog order.
            pub const ALL: &'static [$Name] = &[$($Name::$Variant,)+];

            /// The text the wire, the database and the reports use.
            pub const fn name(self) -> &'static str {
                match self {
                    $($Name::$Variant => $text,)+
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|member| member.name() == name)
            }

            /// The catalog's column for this member.
            pub const fn measurement(self) -> Measurement {
                match self {
                    $($Name::$Variant => Measurement {
                        column: concat!($text, $suffix),
                        source: Source::$source($Name::$Variant),
                        kind: Kind::Number,
                        unit: $unit,
                        label: $label,
                        header: "",
                        uses: $uses,
                    },)+
                }
            }
        }

        impl serde::Serialize for $Name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl std::fmt::Display for $Name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.name())
            }
        }
    };
}

const ANALYSED: Uses = Uses::ANALYSED;
const ANALYSED_PLOTTED: Uses = Uses::ANALYSED.and(Uses::PLOTTED);

catalogued_names! {
    /// The bounds of `science.md` §4 a trial reports beside the VC and spectral (BFT)
    /// capacities. Those ending in `_2layer` exist only for networks with one hidden layer;
    /// `path_norm` is a ranking measure (Jiang et al. 2020), not a calibrated bound.
    /// `pac_bayes_flatness` comes from the largest weight noise of a fixed grid that costs 0.1
    /// training accuracy, with a union bound over the grid and the noisy network's error in it;
    /// `stagnation_localized_spectral` is our heuristic diagnostic (science.md §4), not a proven
    /// bound, and needs the probe.
    pub enum BoundName (Bound, column suffix "_gap_estimate") {
        Frobenius2Layer = "frobenius_2layer", Unit::ErrorRate, "Frobenius bound (2-layer)", ANALYSED_PLOTTED;
        OneInfinity2Layer = "one_infinity_2layer", Unit::ErrorRate, "ℓ1,∞ bound (2-layer)", ANALYSED_PLOTTED;
        Spectral2Layer = "spectral_2layer", Unit::ErrorRate, "explicit spectral bound (2-layer)", ANALYSED_PLOTTED;
        Neyshabur2019TwoLayer = "neyshabur_2019_2layer", Unit::ErrorRate, "Neyshabur et al. 2019 bound (2-layer)",
            ANALYSED_PLOTTED;
        SpectralFrobeniusPacBayes = "spectral_frobenius_pac_bayes", Unit::ErrorRate,
            "spectral-Frobenius PAC-Bayes bound", ANALYSED_PLOTTED;
        GolowichRakhlinShamir = "golowich_rakhlin_shamir", Unit::ErrorRate, "Golowich–Rakhlin–Shamir bound",
            ANALYSED_PLOTTED;
        PathNorm = "path_norm", Unit::ErrorRate, "path norm (ranking measure)", ANALYSED_PLOTTED;
        PacBayesFlatness = "pac_bayes_flatness", Unit::ErrorRate, "PAC-Bayes flatness bound", ANALYSED_PLOTTED;
        StagnationLocalizedSpectral = "stagnation_localized_spectral", Unit::ErrorRate,
            "stagnation-localized bound (heuristic)", ANALYSED_PLOTTED;
    }
}

catalogued_names! {
    /// The statistics of the stagnation probe (`science.md` §3) beyond the per-radius ones. A
    /// trial reports those its probe measured: the snapshot statistics need `probe.snapshots > 0`,
    /// the basin ones `probe.basin_steps > 0`.
    pub enum ProbeStatisticName (ProbeStatistic, column suffix "") {
        /// Mean of d_t over all steps and replicates.
        MeanDistance = "mean_distance", Unit::ParameterDistance, "mean distance to Θ̂", Uses::NONE;
        /// RMS of d_t over all steps and replicates.
        RmsDistance = "rms_distance", Unit::ParameterDistance, "RMS distance to Θ̂", Uses::NONE;
        /// D_eff of the fit MSD(t) ≈ a + 2 D_eff t on the late half of the steps.
        MsdDiffusion = "msd_diffusion", Unit::None, "diffusion D_eff", ANALYSED;
        /// sqrt(MSD(T)) at the last step.
        FinalRmsDistance = "final_rms_distance", Unit::ParameterDistance, "final RMS distance", ANALYSED;
        /// The linearised prediction sqrt(Σ_i v_{i,T}) from the Hessian (science.md §3.8).
        PredictedRmsDistance = "predicted_rms_distance", Unit::ParameterDistance, "predicted RMS distance", ANALYSED;
        /// D_eff of the displacement's part inside the span of the top Hessian eigenvectors.
        MsdDiffusionHessianTop = "msd_diffusion_hessian_top", Unit::None, "D_eff in the top Hessian span",
            ANALYSED;
        /// D_eff of the displacement's part outside that span.
        MsdDiffusionHessianRest = "msd_diffusion_hessian_rest", Unit::None, "D_eff outside the top Hessian span",
            ANALYSED;
        /// R̂(Θ_t) − R̂(Θ̂) over the snapshots, on train and test data: max and mean.
        LossExcursionMaxTrain = "loss_excursion_max_train", Unit::None, "max train-loss excursion", ANALYSED;
        LossExcursionMeanTrain = "loss_excursion_mean_train", Unit::None, "mean train-loss excursion",
            Uses::NONE;
        LossExcursionMaxTest = "loss_excursion_max_test", Unit::None, "max test-loss excursion", Uses::NONE;
        LossExcursionMeanTest = "loss_excursion_mean_test", Unit::None, "mean test-loss excursion", Uses::NONE;
        /// The snapshot cloud per replicate (averaged): participation ratio, k_90, top-2 share,
        /// and the share of its variance inside the top Hessian eigenvectors.
        ParticipationRatio = "participation_ratio", Unit::None, "participation ratio",
            Uses::REPORTED.and(Uses::ANALYSED);
        ComponentsFor90Percent = "components_for_90_percent", Unit::None, "components for 90% variance",
            Uses::NONE;
        TopTwoShare = "top_two_share", Unit::Share, "top-2 variance share", Uses::REPORTED;
        /// The snapshots in each replicate's cloud, and what a pure isotropic random walk's cloud
        /// at the same steps gives (participation ratio and top-2 share): the null the measured
        /// shape is read against.
        SnapshotCount = "snapshot_count", Unit::None, "snapshots per replicate", Uses::NONE;
        NullParticipationRatio = "null_participation_ratio", Unit::None,
            "participation ratio of a random walk (null)", Uses::REPORTED;
        NullTopTwoShare = "null_top_two_share", Unit::Share, "top-2 share of a random walk (null)",
            Uses::REPORTED;
        HessianAlignedShare = "hessian_aligned_share", Unit::Share, "Hessian-aligned variance share", ANALYSED;
        /// Local convexity μ̂ = min ⟨∇R̂(Θ_t), Θ_t − Θ̂⟩ / ||Θ_t − Θ̂||² over the snapshots, and
        /// the share of positive inner products, on train and test data.
        ConvexityMinTrain = "convexity_min_train", Unit::None, "local convexity μ̂ (train)", ANALYSED;
        ConvexityMinTest = "convexity_min_test", Unit::None, "local convexity μ̂ (test)", Uses::NONE;
        ConvexityPositiveShareTrain = "convexity_positive_share_train", Unit::Share,
            "positive inner-product share (train)", Uses::NONE;
        ConvexityPositiveShareTest = "convexity_positive_share_test", Unit::Share,
            "positive inner-product share (test)", Uses::NONE;
        /// The share of replicates that noise-free gradient descent brings back within the first
        /// radius of Θ̂.
        BasinReturnShare = "basin_return_share", Unit::Share, "basin return share", ANALYSED;
        /// The mean linear-interpolation barrier between Θ̂ and each end point.
        LinearBarrier = "linear_barrier", Unit::None, "linear barrier", ANALYSED;
        /// 1 when the probe's batch is the whole training set (no mini-batch noise beside the
        /// injected Gaussian noise), else 0: an assumption of `stay_probability_bound`.
        ProbeFullBatch = "probe_full_batch", Unit::Share, "full-batch probe (0/1)", Uses::NONE;
        /// 1 when training was polished to its gradient-norm tolerance (Θ̂ is stationary, so the
        /// probe has no drift), else 0: the bound's other assumption.
        MinimumPolished = "minimum_polished", Unit::Share, "polished minimum (0/1)", Uses::NONE;
    }
}

const fn column(
    column: &'static str,
    source: Source,
    kind: Kind,
    unit: Unit,
    label: &'static str,
    uses: Uses,
) -> Measurement {
    Measurement {
        column,
        source,
        kind,
        unit,
        label,
        header: "",
        uses,
    }
}

const fn text(name: &'static str, source: Source) -> Measurement {
    column(name, source, Kind::Text, Unit::None, name, Uses::NONE)
}

const fn trial(name: &'static str, label: &'static str) -> Measurement {
    column(
        name,
        Source::Trial(name),
        Kind::Number,
        Unit::None,
        label,
        Uses::NONE,
    )
}

const fn result(name: &'static str, unit: Unit, label: &'static str, uses: Uses) -> Measurement {
    column(name, Source::Result(name), Kind::Number, unit, label, uses)
}

const fn radius(
    name: &'static str,
    index: u8,
    stored: &'static str,
    unit: Unit,
    label: &'static str,
    uses: Uses,
) -> Measurement {
    column(
        name,
        Source::Radius {
            index,
            column: stored,
        },
        Kind::Number,
        unit,
        label,
        uses,
    )
}

/// With a header in the tables.
const fn in_table(measurement: Measurement, header: &'static str) -> Measurement {
    Measurement {
        header,
        uses: measurement.uses.and(Uses::TABLE),
        ..measurement
    }
}

const REPORTED: Uses = Uses::REPORTED;
const REPORTED_ANALYSED: Uses = Uses::REPORTED.and(Uses::ANALYSED);

/// The view's columns before the bounds and probe statistics, in view order.
const LEADING: &[Measurement] = &[
    text("sweep", Source::Trial("sweep")),
    text("trial_id", Source::Trial("id")),
    trial("ordinal", "grid position"),
    text("state", Source::Trial("state")),
    trial("attempts", "leases so far"),
    text("last_error", Source::Trial("last_error")),
    trial("width", "width"),
    trial("depth", "depth"),
    trial("learning_rate", "learning rate"),
    trial("noise_sigma", "gradient-noise σ"),
    trial("probe_noise_sigma", "probe noise σ"),
    trial("batch_size", "batch size"),
    trial("seed", "seed"),
    text("worker_id", Source::Result("worker_id")),
    text("outcome", Source::Result("outcome")),
    text("diverged_phase", Source::Result("diverged_phase")),
    result("train_loss", Unit::Loss, "training loss", Uses::NONE),
    result("test_loss", Unit::Loss, "test loss", Uses::NONE),
    in_table(
        result("train_error", Unit::Share, "training error", REPORTED),
        "train err",
    ),
    in_table(
        result(
            "test_error",
            Unit::Share,
            "test error",
            REPORTED_ANALYSED.and(Uses::CELL),
        ),
        "test err",
    ),
    in_table(
        result(
            "error_gap",
            Unit::ErrorRate,
            "measured gap, 0-1 error (test − train)",
            REPORTED_ANALYSED.and(Uses::PLOTTED).and(Uses::CELL),
        ),
        "err gap",
    ),
    result(
        "loss_gap",
        Unit::Loss,
        "measured gap, cross-entropy (test − train)",
        REPORTED_ANALYSED.and(Uses::PLOTTED),
    ),
    result("steps", Unit::Steps, "training steps", REPORTED),
    column(
        "reached_target",
        Source::Result("reached_target"),
        Kind::Flag,
        Unit::None,
        "reached the target loss",
        Uses::NONE,
    ),
    result("polish_steps", Unit::Steps, "polish steps", Uses::NONE),
    result(
        "gradient_norm",
        Unit::None,
        "gradient norm at Θ̂",
        Uses::ANALYSED,
    ),
    in_table(
        result(
            "parameter_count",
            Unit::None,
            "parameter count",
            REPORTED_ANALYSED,
        ),
        "params",
    ),
    result("train_size", Unit::None, "training examples", Uses::NONE),
    result("test_size", Unit::None, "test examples", Uses::NONE),
    result(
        "noise_stream",
        Unit::None,
        "noise stream version",
        Uses::NONE,
    ),
    in_table(
        result("margin_gamma", Unit::None, "margin γ", REPORTED_ANALYSED),
        "margin γ",
    ),
    result(
        "mean_input_norm_squared",
        Unit::None,
        "mean squared input norm",
        Uses::NONE,
    ),
    result(
        "vc_capacity",
        Unit::Capacity,
        "parameter-count (VC) capacity",
        REPORTED_ANALYSED,
    ),
    result(
        "spectral_capacity",
        Unit::Capacity,
        "spectral (BFT) capacity",
        REPORTED_ANALYSED,
    ),
    in_table(
        result(
            "vc_gap_estimate",
            Unit::ErrorRate,
            "parameter-count (VC) bound",
            REPORTED_ANALYSED.and(Uses::PLOTTED).and(Uses::CELL),
        ),
        "VC bound",
    ),
    in_table(
        result(
            "spectral_gap_estimate",
            Unit::ErrorRate,
            "spectral (BFT) bound",
            REPORTED_ANALYSED.and(Uses::PLOTTED).and(Uses::CELL),
        ),
        "spectral bound",
    ),
    result(
        "minimum_norm",
        Unit::ParameterDistance,
        "||Θ̂||",
        Uses::ANALYSED,
    ),
    result(
        "stay_fraction",
        Unit::Share,
        "occupancy of the first ball",
        REPORTED_ANALYSED,
    ),
    result(
        "max_distance",
        Unit::ParameterDistance,
        "largest probe distance",
        REPORTED_ANALYSED.and(Uses::CELL),
    ),
    result(
        "final_distance",
        Unit::ParameterDistance,
        "final probe distance",
        Uses::NONE,
    ),
    radius(
        "radius_1",
        0,
        "radius",
        Unit::ParameterDistance,
        "first radius",
        Uses::NONE,
    ),
    in_table(
        radius(
            "stay_probability_1",
            0,
            "stay_probability",
            Unit::Share,
            "stay probability (first radius)",
            REPORTED_ANALYSED.and(Uses::CELL),
        ),
        "stay p(r₁)",
    ),
    radius(
        "mean_exit_step_1",
        0,
        "mean_exit_step",
        Unit::Steps,
        "mean exit step (first radius)",
        REPORTED_ANALYSED,
    ),
    radius(
        "occupancy_1",
        0,
        "occupancy",
        Unit::Share,
        "occupancy (first radius)",
        Uses::NONE,
    ),
    radius(
        "median_exit_step_1",
        0,
        "median_exit_step",
        Unit::Steps,
        "median exit step (first radius)",
        Uses::ANALYSED.and(Uses::CELL),
    ),
    column(
        "replicate_exit_steps_1",
        Source::Radius {
            index: 0,
            column: "replicate_exit_steps",
        },
        Kind::Text,
        Unit::Steps,
        "exit step per replicate (first radius)",
        Uses::NONE,
    ),
    radius(
        "mean_exits_1",
        0,
        "mean_exits",
        Unit::None,
        "exits per replicate (first radius)",
        Uses::ANALYSED,
    ),
    radius(
        "mean_reentries_1",
        0,
        "mean_reentries",
        Unit::None,
        "re-entries per replicate (first radius)",
        Uses::ANALYSED,
    ),
    radius(
        "predicted_stay_probability_1",
        0,
        "predicted_stay_probability",
        Unit::Share,
        "predicted stay probability, estimate (first radius)",
        REPORTED_ANALYSED,
    ),
    radius(
        "stay_probability_bound_1",
        0,
        "stay_probability_bound",
        Unit::Share,
        "stay probability, lower bound (first radius)",
        Uses::REPORTED,
    ),
    radius(
        "radius_2",
        1,
        "radius",
        Unit::ParameterDistance,
        "second radius",
        Uses::NONE,
    ),
    radius(
        "stay_probability_2",
        1,
        "stay_probability",
        Unit::Share,
        "stay probability (second radius)",
        Uses::CELL,
    ),
    radius(
        "mean_exit_step_2",
        1,
        "mean_exit_step",
        Unit::Steps,
        "mean exit step (second radius)",
        Uses::NONE,
    ),
    radius(
        "occupancy_2",
        1,
        "occupancy",
        Unit::Share,
        "occupancy (second radius)",
        Uses::NONE,
    ),
    radius(
        "median_exit_step_2",
        1,
        "median_exit_step",
        Unit::Steps,
        "median exit step (second radius)",
        Uses::NONE,
    ),
    radius(
        "predicted_stay_probability_2",
        1,
        "predicted_stay_probability",
        Unit::Share,
        "predicted stay probability, estimate (second radius)",
        Uses::NONE,
    ),
    radius(
        "stay_probability_bound_2",
        1,
        "stay_probability_bound",
        Unit::Share,
        "stay probability, lower bound (second radius)",
        Uses::NONE,
    ),
    in_table(
        result(
            "hessian_lambda_max",
            Unit::Curvature,
            "Hessian λ_max",
            REPORTED_ANALYSED.and(Uses::CELL),
        ),
        "λ_max",
    ),
    result(
        "hessian_lambda_min",
        Unit::Curvature,
        "Hessian λ_min (upper estimate)",
        Uses::NONE,
    ),
    result(
        "hessian_trace",
        Unit::Curvature,
        "Hessian trace",
        REPORTED_ANALYSED,
    ),
    result(
        "stability_margin",
        Unit::Curvature,
        "stability margin 2/η − λ_max",
        REPORTED,
    ),
    result(
        "probe_stability_margin",
        Unit::Curvature,
        "probe stability margin 2/η_probe − λ_max",
        REPORTED,
    ),
    result(
        "training_stability_margin",
        Unit::Curvature,
        "training stability margin 2(1+μ)/η − λ_max",
        REPORTED,
    ),
    column(
        "hessian_top_eigenvalues",
        Source::Result("hessian_top_eigenvalues"),
        Kind::Text,
        Unit::Curvature,
        "top Hessian eigenvalues",
        Uses::NONE,
    ),
];

/// The view's columns after the bounds and probe statistics, in view order.
const TRAILING: &[Measurement] = &[
    column(
        "msd_curve",
        Source::Result("msd_curve"),
        Kind::Text,
        Unit::None,
        "MSD curve",
        Uses::NONE,
    ),
    in_table(
        result("train_seconds", Unit::Seconds, "training time", REPORTED),
        "train s",
    ),
    result("probe_seconds", Unit::Seconds, "probe time", Uses::NONE),
    result(
        "measure_seconds",
        Unit::Seconds,
        "measurement time",
        Uses::NONE,
    ),
    result(
        "recorded_at_ms",
        Unit::Milliseconds,
        "recorded at (ms since the epoch)",
        Uses::NONE,
    ),
    text("params", Source::Trial("params")),
];

/// Every column of the `trial_results` view, in view order: the trial, its results and first two
/// radii, the Hessian, every bound's gap estimate, every probe statistic, then timings and the
/// configuration.
pub fn catalog() -> &'static [Measurement] {
    static CATALOG: OnceLock<Vec<Measurement>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        LEADING
            .iter()
            .copied()
            .chain(BoundName::ALL.iter().map(|bound| bound.measurement()))
            .chain(
                ProbeStatisticName::ALL
                    .iter()
                    .map(|statistic| statistic.measurement()),
            )
            .chain(TRAILING.iter().copied())
            .collect()
    })
}

/// The catalog entry of a view column.
pub fn measurement(column: &str) -> Option<&'static Measurement> {
    catalog().iter().find(|entry| entry.column == column)
}

/// The numeric columns (numbers and flags), in view order.
pub fn numeric_columns() -> &'static [&'static str] {
    static NUMBERS: OnceLock<Vec<&'static str>> = OnceLock::new();
    NUMBERS.get_or_init(|| {
        catalog()
            .iter()
            .filter(|entry| entry.kind != Kind::Text)
            .map(|entry| entry.column)
            .collect()
    })
}

/// The columns with a use, in view order.
pub fn used_for(uses: Uses) -> impl Iterator<Item = &'static Measurement> {
    catalog()
        .iter()
        .filter(move |entry| entry.uses.contains(uses))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn columns_are_unique_and_plain_identifiers() {
        let mut seen = BTreeSet::new();
        for entry in catalog() {
            assert!(seen.insert(entry.column), "{} twice", entry.column);
            assert!(
                entry
                    .column
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is spliced into SQL and must be a plain identifier",
                entry.column
            );
        }
    }

    #[test]
    fn names_round_trip_and_table_columns_have_headers() {
        for bound in BoundName::ALL {
            assert_eq!(BoundName::from_name(bound.name()), Some(*bound));
        }
        for statistic in ProbeStatisticName::ALL {
            assert_eq!(
                ProbeStatisticName::from_name(statistic.name()),
                Some(*statistic)
            );
        }
        assert_eq!(BoundName::from_name("vc"), None);
        for entry in catalog() {
            assert_eq!(
                entry.uses.contains(Uses::TABLE),
                !entry.header.is_empty(),
                "{}",
                entry.column
            );
            assert!(
                entry.kind != Kind::Text || entry.uses == Uses::NONE,
                "{} is text and cannot be aggregated",
                entry.column
            );
        }
    }
}
