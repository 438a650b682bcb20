//! Refresh-token values.
//!
//! A refresh token is `lkrt_<family>.<generation>.<secret>.<tag>`:
//! - `family`: the token family's id (32 hex digits), so a rotation is a primary-key update of
//!   one row per family instead of an insert per generation;
//! - `generation`: the family's generation this token was issued as (0 for the first);
//! - `secret`: 256 bits from the CSPRNG; only its SHA-256 is stored, and only for the current
//!   generation;
//! - `tag`: the first 128 bits of `HMAC-SHA256(k, family . generation . secret)` with `k`
//!   derived from the master key. It proves that Latchkey issued the token, so a token of an
//!   older generation is recognised as *reuse* (RFC 9700 §4.14.2: revoke the family) without
//!   storing the hash of every generation, and a forged token naming a family (family ids
//!   appear in access tokens as `sid`) can never revoke it. Tokens whose tag does not verify
//!   are rejected before any database work.
//!
//! For a client with a refresh grace window, a rotation also keeps the successor it issues,
//! sealed (AES-256-GCM under another key derived from the master key, the family and the
//! successor's generation bound as associated data), so that a retry of the previous token
//! within the window can answer that same successor.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{random_token, sha256_hex, MasterKey};
use crate::domain::{FamilyId, PresentedToken, RefreshTokenText};

/// A sealed successor is at most this long (base64 of nonce, token, tag); longer is not ours.
const MAX_SEALED_SUCCESSOR_LEN: usize = 4 * (NONCE_LEN + MAX_REFRESH_TOKEN_LEN + 16) / 3 + 4;

const PREFIX: &str = "lkrt_";
const TAG_BYTES: usize = 16;
/// The longest value `mint` produces is well under this; anything longer is rejected unread.
pub const MAX_REFRESH_TOKEN_LEN: usize = 160;

/// A freshly minted refresh token: the value for the client, the hash for the store (the
/// SHA-256 of 256 random bits: it gives nothing away, the value is the secret).
#[derive(Debug)]
pub struct MintedRefreshToken {
    pub value: RefreshTokenText,
    pub secret_hash: String,
}

/// Mints and parses refresh tokens, and seals the successors kept for grace-window retries.
pub struct RefreshTokenCodec {
    tag_key: hmac::Key,
    successor_key: LessSafeKey,
}

impl std::fmt::Debug for RefreshTokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshTokenCodec([redacted])")
    }
}

impl RefreshTokenCodec {
    pub fn new(master: &MasterKey) -> Self {
        let k = master.derive_key("latchkey refresh-token tag v1");
        let sealing = master.derive_key("latchkey refresh-token successor seal v1");
        let successor_key = match UnboundKey::new(&AES_256_GCM, &sealing) {
            Ok(k) => LessSafeKey::new(k),
            // A 32-byte key is always accepted by AES-256-GCM.
            Err(_) => std::process::abort(),
        };
        Self {
            tag_key: hmac::Key::new(hmac::HMAC_SHA256, &k),
            successor_key,
        }
    }

    /// The associated data of a sealed successor: what it is, its family and generation.
    fn successor_aad(family_id: &FamilyId, generation: i64) -> Vec<u8> {
        format!(
            "latchkey refresh successor v1|{}|{generation}",
            family_id.as_str()
        )
        .into_bytes()
    }

    /// The successor `successor` (of generation `generation` in `family_id`) sealed for the
    /// family row, URL-safe base64; `None` if the random nonce could not be drawn.
    pub fn seal_successor(
        &self,
        family_id: &FamilyId,
        generation: i64,
        successor: &RefreshTokenText,
    ) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut in_out = successor.expose_secret().as_bytes().to_vec();
        self.successor_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::successor_aad(family_id, generation)),
                &mut in_out,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// What [`Self::seal_successor`] sealed for this family and generation; `None` if it was
    /// sealed for another one, under another master key, or changed.
    pub fn open_successor(
        &self,
        family_id: &FamilyId,
        generation: i64,
        sealed: &str,
    ) -> Option<RefreshTokenText> {
        if sealed.len() > MAX_SEALED_SUCCESSOR_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .successor_key
            .open_in_place(
                nonce,
                Aad::from(Self::successor_aad(family_id, generation)),
                &mut in_out,
            )
            .ok()?;
        let text = std::str::from_utf8(plain).ok()?;
        Some(RefreshTokenText::new(text.to_owned()))
    }

    fn tag(&self, family_hex: &str, generation: i64, secret: &str) -> [u8; TAG_BYTES] {
        let mut ctx = hmac::Context::with_key(&self.tag_key);
        ctx.update(family_hex.as_bytes());
        ctx.update(b".");
        ctx.update(generation.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(secret.as_bytes());
        let full = ctx.sign();
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(&full.as_ref()[..TAG_BYTES]);
        out
    }

    /// A new token for the family `family_id` (its stored, hyphenated UUID) at `generation`.
    pub fn mint(&self, family_id: &str, generation: i64) -> MintedRefreshToken {
        let family_hex: String = family_id.chars().filter(|c| *c != '-').collect();
        let secret = random_token(32);
        let tag = URL_SAFE_NO_PAD.encode(self.tag(&family_hex, generation, &secret));
        MintedRefreshToken {
            secret_hash: sha256_hex(secret.as_bytes()),
            value: RefreshTokenText::new(format!(
                "{PREFIX}{family_hex}.{generation}.{secret}.{tag}"
            )),
        }
    }

    /// Parses a presented value; `None` unless it is well formed and its tag verifies.
    pub fn parse(&self, value: &str) -> Option<PresentedToken> {
        if value.len() > MAX_REFRESH_TOKEN_LEN {
            return None;
        }
        let rest = value.strip_prefix(PREFIX)?;
        let mut parts = rest.split('.');
        let (family_hex, generation_text, secret, tag) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let family = uuid::Uuid::try_parse(family_hex).ok()?;
        // Canonical forms only: one spelling per token.
        if family.simple().to_string() != family_hex {
            return None;
        }
        let generation: i64 = generation_text.parse().ok()?;
        if generation < 0 || generation.to_string() != generation_text {
            return None;
        }
        if secret.len() != 43 || !secret.bytes().all(is_b64url) {
            return None;
        }
        let presented_tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.tag(family_hex, generation, secret);
        if !super::constant_time_eq(&presented_tag, &expected) {
            return None;
        }
        Some(PresentedToken {
            family_id: FamilyId::from_uuid(family),
            generation,
            token_hash: sha256_hex(secret.as_bytes()),
        })
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> RefreshTokenCodec {
        let master =
            MasterKey::from_base64(&MasterKey::generate_base64()).unwrap_or_else(|e| panic!("{e}"));
        RefreshTokenCodec::new(&master)
    }

    #[test]
    fn minted_tokens_parse_back_to_their_family_and_generation() {
        let c = codec();
        let family = uuid::Uuid::new_v4();
        let t = c.mint(&family.hyphenated().to_string(), 7);
        let value = t.value.expose_secret();
        assert!(value.starts_with("lkrt_"));
        assert!(value.len() <= MAX_REFRESH_TOKEN_LEN);
        assert!(!format!("{t:?}").contains(value), "Debug shows no token");
        let p = c.parse(value).unwrap_or_else(|| panic!("parses"));
        assert_eq!(p.family_id.as_str(), family.hyphenated().to_string());
        assert_eq!(p.generation, 7);
        assert_eq!(p.token_hash, t.secret_hash);
        assert_ne!(
            c.mint(&family.hyphenated().to_string(), 7)
                .value
                .expose_secret(),
            value,
            "secrets are random"
        );
    }

    #[test]
    fn a_sealed_successor_opens_only_for_its_family_and_generation() {
        let c = codec();
        let family = FamilyId::generate();
        let successor = c.mint(family.as_str(), 4).value;
        let sealed = c
            .seal_successor(&family, 4, &successor)
            .unwrap_or_else(|| panic!("seals"));
        assert!(!sealed.contains(successor.expose_secret()));
        assert!(sealed.len() <= MAX_SEALED_SUCCESSOR_LEN);
        let opened = c
            .open_successor(&family, 4, &sealed)
            .unwrap_or_else(|| panic!("opens"));
        assert_eq!(opened.expose_secret(), successor.expose_secret());
        assert!(c.open_successor(&family, 5, &sealed).is_none());
        assert!(c
            .open_successor(&FamilyId::generate(), 4, &sealed)
            .is_none());
        assert!(codec().open_successor(&family, 4, &sealed).is_none());
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap_or_default();
        assert!(c.open_successor(&family, 4, &tampered).is_none());
        for bad in ["", "%%%", "AAAA"] {
            assert!(c.open_successor(&family, 4, bad).is_none(), "{bad}");
        }
        assert_ne!(
            c.seal_successor(&family, 4, &successor),
            Some(sealed),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn tampered_foreign_or_malformed_tokens_do_not_parse() {
        let c = codec();
        let family = uuid::Uuid::new_v4();
        let minted = c.mint(&family.hyphenated().to_string(), 3);
        let t = minted.value.expose_secret();
        // Another generation number with the same secret and tag.
        assert!(c.parse(&t.replacen(".3.", ".2.", 1)).is_none());
        assert!(c.parse(&t.replacen(".3.", ".03.", 1)).is_none());
        // Another family.
        let other = uuid::Uuid::new_v4().simple().to_string();
        let family_hex = family.simple().to_string();
        assert!(c.parse(&t.replacen(&family_hex, &other, 1)).is_none());
        // Flipped secret character.
        let mut chars: Vec<char> = t.chars().collect();
        let i = t.find(".3.").unwrap_or(0) + 4;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        assert!(c.parse(&chars.into_iter().collect::<String>()).is_none());
        // Issued under another master key.
        assert!(codec().parse(t).is_none());
        for bad in [
            "",
            "lkrt_",
            "lkrt_a.b.c.d",
            "garbage",
            &format!("{t}.x"),
            &"x".repeat(500),
        ] {
            assert!(c.parse(bad).is_none(), "{bad}");
        }
    }
}
