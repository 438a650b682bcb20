//! Cryptography: password hashing, secrets, the master key, signing keys and the key ring;
//! second factors' TOTP (`totp`) and recovery codes (`recovery_code`).

mod access_token;
mod account_token;
mod breach;
mod browser;
mod keyring;
mod master_key;
pub mod passkey;
mod password;
mod pem;
pub mod recovery_code;
mod refresh_token;
mod secrets;
mod signing;
pub mod totp;
mod totp_vault;

pub use access_token::{
    verify_access_token, verify_id_token_hint, AccessTokenError, IdTokenHint, RegisteredClaims,
    MAX_ACCESS_TOKEN_LEN,
};
pub use account_token::{
    AccountTokenCodec, MintedSecret, MAGIC_CODE_DIGITS, MAX_ACCOUNT_TOKEN_LEN,
};
pub use breach::{BreachCorpus, BreachCorpusError};
pub use browser::{
    left_half_hash, lookup_hash, mint_lookup_secret, pkce_s256_matches, BrowserSeal, SealError,
};
pub use keyring::{KeyRing, KeyRingSnapshot};
pub use master_key::{MasterKey, MasterKeyError};
pub use password::{Argon2Settings, PasswordHasher, PasswordHashingError, Verification};
pub use pem::{private_key_from_pem, PemError};
pub use refresh_token::{MintedRefreshToken, RefreshTokenCodec, MAX_REFRESH_TOKEN_LEN};
pub use secrets::{constant_time_eq, random_token, sha256_base64, sha256_hex};
pub use signing::{jwk_thumbprint, SigningError, SigningKey};
pub use totp::TotpSecret;
pub use totp_vault::TotpVault;
