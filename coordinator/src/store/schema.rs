//! Bringing a database up to date at start-up: the migrations (tables and their history), then
//! the derived `trial_results` view (see [`super::view`]).
//!
//! Migrations that once re-created the view were edited to leave it out. sqlx refuses a database
//! whose applied migrations have other checksums than the files, so a database that applied the
//! old texts is first re-stamped: where a row still holds the old checksum below, it gets the
//! edited file's. Nothing else in the database changes, and the edit changed no table.

use sqlx::migrate::Migrator;

/// (version, SHA-384 of the text as released) of each edited SQLite migration.
pub const SQLITE_EDITED: &[(i64, &str)] = &[
    (
        4,
        "f80dfd64225f2ee6de0e6072ab3433a4faebf46cfaba885a2ae5e24d40517e7c126e75f0807662d8d12c1b0e8a702ab6",
    ),
    (
        5,
        "6fb87fe7bda84e7dd2db826a0e89cefae9b5dc07cc8b238071e624315b49b7bbf4335db9a8113f1f0ec036a6bc03c5ab",
    ),
    (
        6,
        "fcc8646ec08c07bd92b25692d10c89e9693cd12a9134c120e635fa500f3459d6e75dfa6616efcdb5bd38737693884b9c",
    ),
    (
        7,
        "38367cd3c0e240addc5346c6a9eb9dedbd7cd9d7fc7abd4c4eba7d6f58cef7f4bad22edf9290450781ba7e564f772a9a",
    ),
    (
        8,
        "9e26b476daee0bbbfda9241b87bdd953d009cfe07d279de91dd51d415b81f805f53aa0ed4d048316dda1cff67be73ac3",
    ),
    (
        9,
        "53c8aecac581bfc5f8fd4c3bca7470c078d4317c044b4d6e5b7b4a3bc34fdca69281c7d278c9c17a6cd23cfd34c5dd33",
    ),
];

/// (version, SHA-384 of the text as released) of each edited PostgreSQL migration.
pub const POSTGRES_EDITED: &[(i64, &str)] = &[
    (
        3,
        "f80dfd64225f2ee6de0e6072ab3433a4faebf46cfaba885a2ae5e24d40517e7c126e75f0807662d8d12c1b0e8a702ab6",
    ),
    (
        4,
        "9b8b3d58be5dc8db946f8e6b8e816762b6da9e49fffafeac9dfb26b1ffb728cdf2d5d53129a7edbea6e7bdb7252548a8",
    ),
    (
        5,
        "b47eac72efff975c3fb76e7fbcb2251074c948ef478a9e0227c47447f7d42a4ff68f6f897498cd1336596cacbd678264",
    ),
    (
        6,
        "0af33f34dd9f4845bebc59e50ff10ace6dadc740e65a02627c8154463293d38f737f9e4d1689489950df91252e0d51d6",
    ),
    (
        7,
        "a8984156d9005dee7f25af989010de998268e889b5f0891631b13a90588c471950acf782a23f29af1ff33cf1dbe97fcb",
    ),
    (
        8,
        "e53f4d262e9750e28a099cc8e69c0cae3e19607b8853bf627cca26de9e9d94683d914bd643fb6e286475cf8256bb87f8",
    ),
];

/// A re-stamp: the applied migration `version` whose stored checksum is `released` gets `current`.
pub struct Restamp {
    pub version: i64,
    pub released: Vec<u8>,
    pub current: Vec<u8>,
}

/// The re-stamps for `edited` against the migrations compiled in.
pub fn restamps(migrator: &Migrator, edited: &[(i64, &str)]) -> Vec<Restamp> {
    edited
        .iter()
        .filter_map(|(version, released)| {
            let migration = migrator
                .iter()
                .find(|migration| migration.version == *version)?;
            Some(Restamp {
                version: *version,
                released: hex::decode(released).ok()?,
                current: migration.checksum.to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edited_migration_is_compiled_in_and_changed() {
        for (migrator, edited) in [
            (sqlx::migrate!("../migrations/sqlite"), SQLITE_EDITED),
            (sqlx::migrate!("../migrations/postgres"), POSTGRES_EDITED),
        ] {
            let restamps = restamps(&migrator, edited);
            assert_eq!(restamps.len(), edited.len());
            for restamp in restamps {
                assert_eq!(restamp.released.len(), 48, "SHA-384");
                assert_ne!(restamp.released, restamp.current, "{}", restamp.version);
            }
        }
    }
}
