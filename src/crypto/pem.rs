//! Reading operators' private keys from PEM: base64 DER between `-----BEGIN/END ...-----`
//! lines, parsed by aws-lc-rs. The result is always PKCS#8, the form keys are stored in.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::domain::SigningAlg;

#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("not a PEM private key: expected a -----BEGIN PRIVATE KEY----- block (PKCS#8), or EC PRIVATE KEY (SEC1) or RSA PRIVATE KEY (PKCS#1)")]
    NotPem,
    #[error("the PEM body is not valid base64")]
    Base64,
    #[error("encrypted private keys are not supported; decrypt it first (openssl pkcs8 -topk8 -nocrypt)")]
    Encrypted,
    #[error("a PEM {0} block holds no private key; give the private key")]
    NotPrivate(String),
    #[error("unsupported PEM block {0:?}")]
    UnsupportedLabel(String),
    #[error("unsupported or invalid key: only P-256 EC (ES256), RSA of 2048 bits or more (RS256) and Ed25519 (EdDSA) keys are accepted")]
    UnsupportedKey,
    #[error("the key could not be converted to PKCS#8")]
    Encode,
}

/// Finds the first PEM block; returns its label and decoded DER.
fn first_block(text: &str) -> Result<(String, Vec<u8>), PemError> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("-----BEGIN ")
                .and_then(|r| r.strip_suffix("-----"))
        })
        .ok_or(PemError::NotPem)?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut closed = false;
    for l in lines {
        if l == end {
            closed = true;
            break;
        }
        // RFC 1421 headers (Proc-Type, DEK-Info) mean an encrypted legacy key.
        if l.contains(':') {
            return Err(PemError::Encrypted);
        }
        body.push_str(l);
    }
    if !closed {
        return Err(PemError::NotPem);
    }
    let der = STANDARD.decode(body).map_err(|_| PemError::Base64)?;
    Ok((label, der))
}

/// Parses a private key; returns its algorithm (from the key type) and its PKCS#8 DER.
pub fn private_key_from_pem(text: &str) -> Result<(SigningAlg, Vec<u8>), PemError> {
    let (label, der) = first_block(text)?;
    match label.as_str() {
        "PRIVATE KEY" => pkcs8(&der),
        "EC PRIVATE KEY" => {
            let k = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                .map_err(|_| PemError::UnsupportedKey)?;
            let doc = k.to_pkcs8v1().map_err(|_| PemError::Encode)?;
            Ok((SigningAlg::ES256, doc.as_ref().to_vec()))
        }
        "RSA PRIVATE KEY" => {
            let k = RsaKeyPair::from_der(&der).map_err(|_| PemError::UnsupportedKey)?;
            rsa(&k)
        }
        "ENCRYPTED PRIVATE KEY" => Err(PemError::Encrypted),
        l if l.contains("PUBLIC KEY") || l == "CERTIFICATE" => {
            Err(PemError::NotPrivate(l.to_owned()))
        }
        other => Err(PemError::UnsupportedLabel(other.to_owned())),
    }
}

fn pkcs8(der: &[u8]) -> Result<(SigningAlg, Vec<u8>), PemError> {
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).is_ok() {
        return Ok((SigningAlg::ES256, der.to_vec()));
    }
    if Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok() {
        return Ok((SigningAlg::EdDSA, der.to_vec()));
    }
    match RsaKeyPair::from_pkcs8(der) {
        Ok(k) => rsa(&k),
        Err(_) => Err(PemError::UnsupportedKey),
    }
}

fn rsa(k: &RsaKeyPair) -> Result<(SigningAlg, Vec<u8>), PemError> {
    if k.public_modulus_len() < 256 {
        return Err(PemError::UnsupportedKey);
    }
    let der: aws_lc_rs::encoding::Pkcs8V1Der = k.as_der().map_err(|_| PemError::Encode)?;
    Ok((SigningAlg::RS256, der.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let body: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            body.join("\n")
        )
    }

    #[test]
    fn pkcs8_keys_of_each_type_are_recognised() {
        for alg in SigningAlg::ALL {
            let (_, der) =
                crate::crypto::SigningKey::generate(alg).unwrap_or_else(|e| panic!("{e}"));
            let parsed = private_key_from_pem(&pem("PRIVATE KEY", &der)).map(|(a, _)| a);
            assert_eq!(parsed.ok(), Some(alg));
        }
    }

    #[test]
    fn garbage_and_public_keys_are_refused_with_a_reason() {
        assert!(matches!(
            private_key_from_pem("hello"),
            Err(PemError::NotPem)
        ));
        assert!(matches!(
            private_key_from_pem(&pem("PRIVATE KEY", b"not a key")),
            Err(PemError::UnsupportedKey)
        ));
        assert!(matches!(
            private_key_from_pem(&pem("PUBLIC KEY", b"x")),
            Err(PemError::NotPrivate(_))
        ));
        assert!(matches!(
            private_key_from_pem(&pem("ENCRYPTED PRIVATE KEY", b"x")),
            Err(PemError::Encrypted)
        ));
    }
}
