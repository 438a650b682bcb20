//! An operator-provided breach corpus: passwords known from data breaches, refused by the
//! password policy. The file holds one entry per line, either a SHA-1 in hex (the "Pwned
//! Passwords" download format, `HASH` or `HASH:COUNT`) or a plain password; it is read once
//! at start-up and kept in memory as 20-byte digests, so size it to memory (the full Pwned
//! Passwords corpus is better served by a k-anonymity API, not built).

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use aws_lc_rs::digest;

#[derive(Debug, thiserror::Error)]
pub enum BreachCorpusError {
    #[error("cannot read the breach corpus {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Default)]
pub struct BreachCorpus {
    digests: HashSet<[u8; 20]>,
}

impl std::fmt::Debug for BreachCorpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreachCorpus")
            .field("entries", &self.digests.len())
            .finish()
    }
}

fn sha1(input: &[u8]) -> [u8; 20] {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, input);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

fn from_hex(hex: &str) -> Option<[u8; 20]> {
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl BreachCorpus {
    pub fn load(path: &Path) -> Result<Self, BreachCorpusError> {
        let read_error = |source| BreachCorpusError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut digests = HashSet::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(read_error)?;
            let entry = line.trim_end_matches(['\r', '\n']);
            if entry.is_empty() {
                continue;
            }
            let hash_part = entry.split(':').next().unwrap_or(entry);
            digests.insert(from_hex(hash_part).unwrap_or_else(|| sha1(entry.as_bytes())));
        }
        Ok(Self { digests })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn contains(&self, password: &str) -> bool {
        !self.digests.is_empty() && self.digests.contains(&sha1(password.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_sha1_entries_are_both_recognised() {
        let dir = std::env::temp_dir().join(format!("lk-breach-{}", uuid::Uuid::new_v4()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("corpus.txt");
        // SHA-1("P@ssw0rd") in the Pwned Passwords format, and a plain entry.
        let _ = std::fs::write(
            &path,
            "21BD12DC183F740EE76F27B78EB39C8AD972A757:52579\nhunter2-but-longer\n\n",
        );
        let c = BreachCorpus::load(&path).unwrap_or_default();
        assert_eq!(c.len(), 2);
        assert!(c.contains("P@ssw0rd"));
        assert!(c.contains("hunter2-but-longer"));
        assert!(!c.contains("correct horse battery staple"));
        assert!(BreachCorpus::load(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
