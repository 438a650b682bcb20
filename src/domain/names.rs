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

crate::string_newtype! {
    /// A role name such as `manager`.
    pub struct RoleName;
}

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_code("role", raw, 64).map(Self)
    }
}

crate::string_newtype! {
    /// A permission codename such as `orders.approve`.
    pub struct Permission;
}

impl Permission {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_code("permission", raw, 128).map(Self)
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
