//! Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
//! SC '11, §4): a counter-based generator, whose output is a pure function of a 128-bit counter
//! and a 64-bit key. Any block of its stream is computed without the ones before it, by any thread
//! and in any order, which is what lets the gradient noise be drawn in pieces yet come out the
//! same. It passes TestU01's BigCrush, and is the generator cuRAND, JAX and TensorFlow offer for
//! the same reason. No maintained crate provides it, and it is a dozen lines; the tests check it
//! against the published known-answer vectors.

/// The round multipliers and the Weyl key increments of Philox4x32 (Random123's defaults).
const MULTIPLIERS: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
const KEY_INCREMENTS: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];
pub const ROUNDS: usize = 10;

/// Philox4x32-10 of `LANES` counters at once under one key: `counters[w][lane]` is word `w` of
/// lane `lane`'s counter, and the output has the same layout. Each round is a loop over the lanes,
/// which the compiler turns into vector multiplies; the result is that of each lane alone. The
/// words are carried in 64-bit lanes (their high halves zero), where a 32 × 32 → 64-bit vector
/// multiply takes them as they are: in 32-bit lanes every round spread them out and packed them
/// back.
#[inline(always)]
pub fn philox4x32_lanes<const LANES: usize>(
    counters: [[u32; LANES]; 4],
    key: [u32; 2],
) -> [[u32; LANES]; 4] {
    const LOW: u64 = 0xffff_ffff;
    // Loops rather than `array::map`, whose closures are not always inlined into the vector code
    // that calls this (they were not once the crate grew, and the noise took 2.5 times as long).
    let mut words = [[0u64; LANES]; 4];
    for (wide, word) in words.iter_mut().zip(&counters) {
        for (wide, &value) in wide.iter_mut().zip(word) {
            *wide = u64::from(value);
        }
    }
    let [mut x0, mut x1, mut x2, mut x3] = words;
    let mut key = key;
    for round in 0..ROUNDS {
        if round > 0 {
            key = [
                key[0].wrapping_add(KEY_INCREMENTS[0]),
                key[1].wrapping_add(KEY_INCREMENTS[1]),
            ];
        }
        let (key0, key1) = (u64::from(key[0]), u64::from(key[1]));
        for lane in 0..LANES {
            let product0 = u64::from(MULTIPLIERS[0]) * (x0[lane] & LOW);
            let product1 = u64::from(MULTIPLIERS[1]) * (x2[lane] & LOW);
            let next = [
                (product1 >> 32) ^ x1[lane] ^ key0,
                product1 & LOW,
                (product0 >> 32) ^ x3[lane] ^ key1,
                product0 & LOW,
            ];
            [x0[lane], x1[lane], x2[lane], x3[lane]] = next;
        }
    }
    let mut out = [[0u32; LANES]; 4];
    for (narrow, word) in out.iter_mut().zip([x0, x1, x2, x3]) {
        for (narrow, value) in narrow.iter_mut().zip(word) {
            *narrow = value as u32;
        }
    }
    out
}

/// Philox4x32-10 of one counter.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let words = philox4x32_lanes::<1>(counter.map(|word| [word]), key);
    words.map(|[word]| word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's `kat_vectors` for philox4x32 with 10 rounds: counter, key, output.
    const KNOWN_ANSWERS: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];

    #[test]
    fn the_published_known_answers() {
        for (counter, key, output) in KNOWN_ANSWERS {
            assert_eq!(philox4x32(counter, key), output, "counter {counter:x?}");
        }
    }

    #[test]
    fn lanes_give_what_each_counter_gives_alone() {
        let key = [0xa4093822, 0x299f31d0];
        let counters: [[u32; 4]; 8] =
            std::array::from_fn(|lane| [lane as u32 * 7919, 3, lane as u32, u32::MAX - 1]);
        let by_lane: [[u32; 8]; 4] = std::array::from_fn(|word| counters.map(|c| c[word]));
        let together = philox4x32_lanes(by_lane, key);
        for (lane, counter) in counters.iter().enumerate() {
            let alone = philox4x32(*counter, key);
            assert_eq!(together.map(|words| words[lane]), alone, "lane {lane}");
        }
    }
}
