use super::ValidationError;

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')
}

fn parse_code(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if raw.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if !raw.chars().all(is_code_char) {
        return Err(ValidationError::new(
            field,
            "may contain only ASCII letters, digits and . _ - :",
        ));
    }
    Ok(raw.to_owned())
}

/// A role name such as `manager`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_code("role", raw, 64).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A permission codename such as `orders.approve`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Permission(String);

impl Permission {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_code("permission", raw, 128).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codenames_accept_dotted_names_and_reject_spaces() {
        assert!(Permission::parse("orders.approve").is_ok());
        assert!(Permission::parse("orders approve").is_err());
        assert!(RoleName::parse("").is_err());
    }
}
