//! Seeded random streams, one per purpose, so that changing how much randomness one part of a
//! trial consumes (say, the test-set size) never shifts the numbers another part sees.

pub mod normal;
pub mod philox;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; each purpose gets its own ChaCha stream of the trial seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    TrainInputs,
    TestInputs,
    Teacher,
    TrainLabelNoise,
    TestLabelNoise,
    Init,
    BatchOrder,
    PowerIteration,
    /// Lanczos start vector for the Hessian at Θ̂.
    HessianLanczos,
    /// Rademacher probes of Hutchinson's trace estimate.
    HessianTrace,
    /// Start vectors of the probe's per-layer operator-norm excursion.
    ProbeExcursion,
    /// Batch order of probe replicate `i`.
    ProbeBatches(u32),
    /// Weight-noise draw `i` of the PAC-Bayes flatness search.
    Flatness(u32),
    /// Random direction `i` of a loss-landscape slice.
    Landscape(u32),
}

impl Stream {
    fn id(self) -> u64 {
        // Replicate streams live above 2^32 so they never collide with the fixed purposes. 7 and
        // (1 << 32) | i drew the gradient noise until it moved to `train::noise::NoiseStream`.
        match self {
            Stream::TrainInputs => 1,
            Stream::TestInputs => 2,
            Stream::Teacher => 3,
            Stream::TrainLabelNoise => 4,
            Stream::TestLabelNoise => 9,
            Stream::Init => 5,
            Stream::BatchOrder => 6,
            Stream::PowerIteration => 8,
            Stream::HessianLanczos => 10,
            Stream::HessianTrace => 11,
            Stream::ProbeExcursion => 12,
            Stream::ProbeBatches(replicate) => (2 << 32) | u64::from(replicate),
            Stream::Flatness(draw) => (3 << 32) | u64::from(draw),
            Stream::Landscape(direction) => (4 << 32) | u64::from(direction),
        }
    }
}

/// The random stream of `purpose` for the trial seeded with `seed`.
pub fn stream(seed: u64, purpose: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose.id());
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn first_words(seed: u64, purpose: Stream) -> [u64; 4] {
        let mut rng = stream(seed, purpose);
        [rng.random(), rng.random(), rng.random(), rng.random()]
    }

    #[test]
    fn a_stream_is_reproducible_and_distinct_from_the_others() {
        let purposes = [
            Stream::TrainInputs,
            Stream::TestInputs,
            Stream::Teacher,
            Stream::TrainLabelNoise,
            Stream::TestLabelNoise,
            Stream::Init,
            Stream::BatchOrder,
            Stream::PowerIteration,
            Stream::HessianLanczos,
            Stream::HessianTrace,
            Stream::ProbeExcursion,
            Stream::ProbeBatches(0),
            Stream::ProbeBatches(1),
        ];
        let words: Vec<[u64; 4]> = purposes
            .iter()
            .map(|&purpose| first_words(42, purpose))
            .collect();
        for (index, &purpose) in purposes.iter().enumerate() {
            assert_eq!(first_words(42, purpose), words[index]);
            assert_ne!(first_words(43, purpose), words[index]);
            for other in &words[index + 1..] {
                assert_ne!(&words[index], other);
            }
        }
    }
}
