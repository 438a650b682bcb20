//! Recovery codes: the single-use codes a user keeps for when their second factor is lost.
//! Shown once as four groups of four characters (`k7m2-x9qp-4tbh-wn3c`), stored only as a
//! hash.

use secrecy::SecretString;

use super::sha256_hex;

/// The characters of a code: lower-case letters and digits without those that read alike
/// (`0`/`o`, `1`/`l`/`i`). That leaves 31, so a code of 16 holds 16 × log2(31) ≈ 79.3 bits.
pub const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// The characters of a code, dashes aside.
pub const CODE_CHARS: usize = 16;
/// The characters of a group, as shown.
const GROUP: usize = 4;

/// What the hash is of, besides the code: codes hash to values no other use of SHA-256 in
/// Latchkey produces.
const HASH_LABEL: &[u8] = b"latchkey/mfa-recovery-code/v1\0";

/// A new code as shown to the user: 16 characters drawn uniformly from [`ALPHABET`], in
/// four groups of four joined by dashes.
pub fn generate() -> SecretString {
    // Uniform draws by rejection: 248 = 8 × 31 is the largest multiple of 31 below 256.
    const LIMIT: u8 = 248;
    let mut chars = Vec::with_capacity(CODE_CHARS);
    let mut pool = [0u8; 32];
    while chars.len() < CODE_CHARS {
        // aws-lc's RNG only fails if the OS RNG is unusable, in which case nothing is safe
        // anyway; a predictable code would be worse than stopping.
        if aws_lc_rs::rand::fill(&mut pool).is_err() {
            std::process::abort();
        }
        for b in pool {
            if b < LIMIT && chars.len() < CODE_CHARS {
                chars.push(char::from(ALPHABET[usize::from(b % 31)]));
            }
        }
    }
    let mut shown = String::with_capacity(CODE_CHARS + CODE_CHARS / GROUP - 1);
    for (i, c) in chars.into_iter().enumerate() {
        if i > 0 && i % GROUP == 0 {
            shown.push('-');
        }
        shown.push(c);
    }
    SecretString::from(shown)
}

/// A code as typed, in its canonical form (lower case, without the dashes and spaces the
/// user may have typed or left out); `None` if it cannot be a code (wrong length, a character
/// outside the alphabet).
pub fn normalize(input: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_CHARS);
    for c in input.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let c = c.to_ascii_lowercase();
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == CODE_CHARS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

/// What is stored of a normalized code: lower-case hex SHA-256 of a domain-separation label
/// and the code. The code's 79 bits make a salt and a slow hash unnecessary.
pub fn hash(normalized: &str) -> String {
    let mut input = Vec::with_capacity(HASH_LABEL.len() + normalized.len());
    input.extend_from_slice(HASH_LABEL);
    input.extend_from_slice(normalized.as_bytes());
    sha256_hex(&input)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_alphabet_has_no_look_alikes_and_no_repeats() {
        let set: HashSet<u8> = ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), ALPHABET.len());
        for c in b"01oli" {
            assert!(!set.contains(c), "{}", char::from(*c));
        }
        assert!(ALPHABET
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn codes_are_four_groups_of_four_from_the_alphabet() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let code = generate();
            let shown = code.expose_secret();
            let groups: Vec<&str> = shown.split('-').collect();
            assert_eq!(groups.len(), 4, "{shown}");
            assert!(groups.iter().all(|g| g.len() == 4), "{shown}");
            assert!(
                shown.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)),
                "{shown}"
            );
            assert_eq!(normalize(shown).map(|n| n.len()), Some(16), "{shown}");
            assert!(seen.insert(shown.to_owned()), "a repeat: {shown}");
        }
        // Every character turns up: the draw covers the whole alphabet.
        let used: HashSet<char> = seen.iter().flat_map(|c| c.chars()).collect();
        assert_eq!(used.len(), ALPHABET.len() + 1, "and the dash");
    }

    #[test]
    fn normalizing_forgives_case_dashes_and_spaces_only() {
        let canonical = Some("k7m2x9qp4tbhwn3c".to_owned());
        for typed in [
            "k7m2-x9qp-4tbh-wn3c",
            "K7M2-X9QP-4TBH-WN3C",
            "k7m2x9qp4tbhwn3c",
            " k7m2 x9qp 4tbh wn3c\n",
            "k7m2--x9qp-4tbh-wn3c-",
        ] {
            assert_eq!(normalize(typed), canonical, "{typed:?}");
        }
        for bad in [
            "",
            "k7m2-x9qp-4tbh-wn3",
            "k7m2-x9qp-4tbh-wn3cc",
            "k7m2-x9qp-4tbh-wn30",
            "k7m2-x9qp-4tbh-wn3o",
            "k7m2-x9qp-4tbh-wn3l",
            "k7m2-x9qp-4tbh-wn3i",
            "k7m2-x9qp-4tbh-wn31",
            "k7m2_x9qp_4tbh_wn3c",
            "k7m2-x9qp-4tbh-wn3é",
            "k7m2-x9qp-4tbh-wn3ｃ",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_labelled_sha256_hex() {
        let h = hash("k7m2x9qp4tbhwn3c");
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(h, hash("k7m2x9qp4tbhwn3c"));
        assert_ne!(h, hash("k7m2x9qp4tbhwn3d"));
        assert_ne!(
            h,
            sha256_hex(b"k7m2x9qp4tbhwn3c"),
            "the label is in the hash"
        );
        assert_eq!(
            h,
            sha256_hex(b"latchkey/mfa-recovery-code/v1\0k7m2x9qp4tbhwn3c")
        );
    }
}
