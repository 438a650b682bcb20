//! Time-based one-time passwords: RFC 6238 over HOTP (RFC 4226), as authenticator apps
//! (Google Authenticator, 1Password, Aegis) compute them: HMAC-SHA-1, 6 digits, 30-second
//! steps. Also the `otpauth://` URI those apps scan, and its QR code.

use aws_lc_rs::hmac;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretSlice};
use subtle::{Choice, ConstantTimeEq};

use crate::clock::UnixTime;

/// The length of a step, in seconds.
pub const STEP_SECS: i64 = 30;
/// The digits of a code.
pub const DIGITS: u32 = 6;
/// The length of a generated secret, in bytes (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

const MODULUS: u32 = 10u32.pow(DIGITS);

/// A TOTP shared secret: zeroed on drop, never printed.
#[derive(Clone)]
pub struct TotpSecret(SecretSlice<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A new random secret; `None` if the system's random generator failed.
    pub fn generate() -> Option<Self> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        Some(Self::from_bytes(bytes))
    }

    /// A secret as stored (after unsealing it).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// The secret itself: to seal it for storage, never to log it.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The secret as authenticator apps take it typed in: RFC 4648 base32, upper case, no
    /// padding.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(self.as_bytes())
    }
}

/// The time step `now` falls in.
pub fn step_of(now: UnixTime) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// The code of `step` (RFC 4226's HOTP with the step as its counter): a number below 10^6,
/// shown with leading zeros.
pub fn code_at(secret: &TotpSecret, step: i64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let counter = u64::try_from(step).unwrap_or(0);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation (RFC 4226 §5.3): 31 bits from the offset the last nibble names.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    binary % MODULUS
}

/// The step whose code `code` is, among the steps before, at and after `now`'s (one step
/// of drift either way), and only among steps after `last_step` (a used code and any earlier
/// one are refused). `code` must be exactly 6 ASCII digits, with surrounding whitespace and
/// one inner space allowed ("123 456"). The candidates are compared in constant time; when
/// two match, the later step is answered.
pub fn check(secret: &TotpSecret, code: &str, now: UnixTime, last_step: i64) -> Option<i64> {
    let given = normalize_code(code)?;
    let current = step_of(now);
    let mut found: Option<i64> = None;
    for step in [current - 1, current, current + 1] {
        let expected = format!("{:0width$}", code_at(secret, step), width = DIGITS as usize);
        let matches: Choice = expected.as_bytes().ct_eq(&given);
        if bool::from(matches) && step > last_step {
            found = Some(step);
        }
    }
    found
}

/// The 6 digits of a code as typed, or `None` if it is not one.
fn normalize_code(code: &str) -> Option<[u8; DIGITS as usize]> {
    let trimmed = code.trim();
    let mut out = [0u8; DIGITS as usize];
    let mut n = 0;
    let mut spaces = 0;
    for b in trimmed.bytes() {
        match b {
            b' ' => {
                spaces += 1;
                if spaces > 1 {
                    return None;
                }
            }
            b'0'..=b'9' => {
                *out.get_mut(n)? = b;
                n += 1;
            }
            _ => return None,
        }
    }
    (n == out.len()).then_some(out)
}

/// What URI components keep as they are: RFC 3986's unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `otpauth://` URI authenticator apps scan (Google Authenticator's Key Uri Format):
/// `otpauth://totp/{issuer}:{account}?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`,
/// the issuer and account percent-encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    let issuer = utf8_percent_encode(issuer, COMPONENT).to_string();
    let account = utf8_percent_encode(account, COMPONENT);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret = secret.base32(),
    )
}

/// `data` (an `otpauth://` URI) as a QR code in SVG: dark `#000` modules on `#fff`, with the
/// quiet zone, and a `viewBox` so that it scales; no XML declaration, so that it can be
/// inlined in a page. `None` if `data` is too long for a QR code.
pub fn qr_svg(data: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .quiet_zone(true)
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_the_rfc_6238_sha1_test_vectors() {
        // RFC 6238 Appendix B, SHA-1 (8 digits): our 6 digits are the last six of each.
        let vectors: [(i64, u32); 6] = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        let secret = rfc_secret();
        for (time, eight_digits) in vectors {
            assert_eq!(
                code_at(&secret, step_of(time)),
                eight_digits % 1_000_000,
                "T = {time}"
            );
        }
    }

    #[test]
    fn codes_match_the_rfc_4226_hotp_test_vectors() {
        // RFC 4226 Appendix D: counters 0 to 9.
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        let secret = rfc_secret();
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(code_at(&secret, counter as i64), code, "counter {counter}");
        }
    }

    #[test]
    fn steps_are_thirty_seconds() {
        assert_eq!(step_of(0), 0);
        assert_eq!(step_of(29), 0);
        assert_eq!(step_of(30), 1);
        assert_eq!(step_of(59), 1);
        assert_eq!(step_of(1_111_111_109), 37_037_036);
    }

    fn typed(secret: &TotpSecret, step: i64) -> String {
        format!("{:06}", code_at(secret, step))
    }

    #[test]
    fn one_step_of_drift_is_accepted_either_way_and_two_are_not() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = step_of(now);
        for drift in [-1, 0, 1] {
            assert_eq!(
                check(&secret, &typed(&secret, step + drift), now, 0),
                Some(step + drift),
                "drift {drift}"
            );
        }
        for drift in [-2, 2, -3, 3] {
            assert_eq!(
                check(&secret, &typed(&secret, step + drift), now, 0),
                None,
                "drift {drift}"
            );
        }
    }

    #[test]
    fn a_used_step_and_earlier_ones_are_refused() {
        let secret = rfc_secret();
        let now = 2_000_000_000;
        let step = step_of(now);
        let code = typed(&secret, step);
        assert_eq!(check(&secret, &code, now, step - 1), Some(step));
        assert_eq!(check(&secret, &code, now, step), None, "replay");
        assert_eq!(check(&secret, &code, now, step + 1), None);
        // The previous step's code, once a later one was used.
        assert_eq!(check(&secret, &typed(&secret, step - 1), now, step), None);
        // The next step's code is still good after the current one was used.
        assert_eq!(
            check(&secret, &typed(&secret, step + 1), now, step),
            Some(step + 1)
        );
    }

    #[test]
    fn codes_are_six_ascii_digits_with_spaces_around_and_one_inside() {
        let secret = rfc_secret();
        let now = 59;
        let step = step_of(now);
        let code = typed(&secret, step);
        assert_eq!(code, "287082");
        for good in ["287082", " 287082 ", "287 082", "\t287082\n", "28 7082"] {
            assert_eq!(check(&secret, good, now, 0), Some(step), "{good:?}");
        }
        for bad in [
            "",
            "28708",
            "2870820",
            "94287082",
            "287 08 2",
            "287  082",
            "287-082",
            "287\t082",
            "28708a",
            "２８７０８２",
            "+287082",
            "287082\u{0}",
        ] {
            assert_eq!(check(&secret, bad, now, 0), None, "{bad:?}");
        }
        // A wrong code of the right form.
        let wrong = format!("{:06}", (code_at(&secret, step) + 1) % 1_000_000);
        assert_eq!(check(&secret, &wrong, now, 0), None);
    }

    #[test]
    fn codes_keep_their_leading_zeros() {
        // Counter 2 of the RFC 4226 key is 359152; find a step whose code starts with 0.
        let secret = rfc_secret();
        let step = (0..10_000)
            .find(|s| code_at(&secret, *s) < 100_000)
            .unwrap_or_default();
        assert!(code_at(&secret, step) < 100_000);
        let now = step * STEP_SECS;
        assert_eq!(check(&secret, &typed(&secret, step), now, -1), Some(step));
        let unpadded = code_at(&secret, step).to_string();
        assert_eq!(check(&secret, &unpadded, now, -1), None);
    }

    #[test]
    fn secrets_are_random_160_bits_in_base32() {
        let a = TotpSecret::generate().unwrap();
        let b = TotpSecret::generate().unwrap();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.base32().len(), 32);
        assert_eq!(format!("{a:?}"), "TotpSecret([redacted])");
        assert_eq!(
            rfc_secret().base32(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "RFC 4648 base32 of the RFC 6238 secret"
        );
        assert_eq!(TotpSecret::from_bytes(b"foob".to_vec()).base32(), "MZXW6YQ");
    }

    #[test]
    fn the_uri_follows_the_key_uri_format() {
        let secret = rfc_secret();
        assert_eq!(
            otpauth_uri("Latchkey", "alice@example.com", &secret),
            "otpauth://totp/Latchkey:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Latchkey&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri("ACME Co: SSO", "zoë & co", &secret),
            "otpauth://totp/ACME%20Co%3A%20SSO:zo%C3%AB%20%26%20co?\
             secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co%3A%20SSO\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn the_qr_code_is_a_scalable_svg() {
        let uri = otpauth_uri("Latchkey", "alice@example.com", &rfc_secret());
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("viewBox=\"0 0 "), "{svg}");
        assert!(svg.contains("fill=\"#000\""), "{svg}");
        assert!(svg.contains("fill=\"#fff\""), "{svg}");
        assert!(!svg.contains("<?xml"));
        assert_eq!(qr_svg(&"x".repeat(8000)), None, "too long for a QR code");
    }
}
