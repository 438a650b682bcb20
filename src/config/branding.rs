//! `[branding]`: how the hosted pages look: the product name, a logo, colours, an extra
//! stylesheet, and a directory of templates that replace the built-in ones.

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingSettings {
    /// Shown in every page's title and header (default "Latchkey").
    pub product_name: Option<String>,
    /// An https URL (or a path on this server) of a logo shown above each page.
    pub logo_url: Option<String>,
    /// Buttons and links, e.g. `#2f5bea`.
    pub primary_color: Option<String>,
    /// The page background.
    pub background_color: Option<String>,
    /// The text.
    pub text_color: Option<String>,
    /// An https URL (or a path on this server) of a stylesheet loaded after the built-in one.
    pub stylesheet_url: Option<String>,
    /// A directory whose `*.html` files replace the built-in templates of the same name
    /// (`layout.html`, `sign_in.html`, ...): every page and every text can be changed.
    pub templates_dir: Option<PathBuf>,
}

impl BrandingSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.product_name {
            if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                return Err(invalid(
                    "branding.product_name must be 1 to 100 printable characters",
                ));
            }
        }
        for (key, value) in [
            ("primary_color", &self.primary_color),
            ("background_color", &self.background_color),
            ("text_color", &self.text_color),
        ] {
            if let Some(v) = value {
                if !is_hex_color(v) {
                    return Err(invalid(format!(
                        "branding.{key} must be a hex colour such as #2f5bea"
                    )));
                }
            }
        }
        for (key, value) in [
            ("logo_url", &self.logo_url),
            ("stylesheet_url", &self.stylesheet_url),
        ] {
            if let Some(v) = value {
                if asset_origin(v).is_none() {
                    return Err(invalid(format!(
                        "branding.{key} must be an https URL or a path on this server (/...)"
                    )));
                }
            }
        }
        if let Some(dir) = &self.templates_dir {
            if !dir.is_dir() {
                return Err(invalid(format!(
                    "branding.templates_dir {} is not a directory",
                    dir.display()
                )));
            }
        }
        Ok(())
    }
}

/// `#rgb` or `#rrggbb`: nothing that could close a CSS rule.
pub fn is_hex_color(v: &str) -> bool {
    let hex = v.strip_prefix('#').unwrap_or("");
    (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// The CSP source an asset URL needs: `'self'` for a path on this server, the origin of an
/// https URL; `None` for anything else.
pub fn asset_origin(v: &str) -> Option<String> {
    let safe = !v.is_empty()
        && v.len() <= 2000
        && v.chars().all(|c| c.is_ascii_graphic())
        && !v.contains(['"', '\'', '<', '>', '\\', ';']);
    if !safe {
        return None;
    }
    if v.starts_with('/') && !v.starts_with("//") {
        return Some("'self'".into());
    }
    let url = url::Url::parse(v).ok()?;
    (url.scheme() == "https" && url.host().is_some()).then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_asset_urls_are_checked() {
        assert!(is_hex_color("#2f5bea") && is_hex_color("#fff"));
        assert!(!is_hex_color("red") && !is_hex_color("#12345") && !is_hex_color("#fff;}"));
        assert_eq!(asset_origin("/static/logo.svg").as_deref(), Some("'self'"));
        assert_eq!(
            asset_origin("https://cdn.example.com/a/logo.png").as_deref(),
            Some("https://cdn.example.com")
        );
        assert!(asset_origin("http://cdn.example.com/logo.png").is_none());
        assert!(asset_origin("//cdn.example.com/logo.png").is_none());
        assert!(asset_origin("javascript:alert(1)").is_none());
        assert!(asset_origin("https://x.example/\"onload=").is_none());
    }
}
