//! Declarations shared by the domain's value types.
//!
//! - [`string_newtype!`] declares a validated string value (an id, a name, an address): the
//!   struct, `as_str`, `into_string`, `Display`, `AsRef<str>`, `Debug` of the value, and serde
//!   serialization as the bare string. The type's own `parse` stays beside the declaration,
//!   since the rules differ per type.
//! - [`secret_newtype!`] declares a secret value (a password, a bearer token, a one-time
//!   code): kept in a [`secrecy::SecretString`] (zeroed on drop), readable only through
//!   `expose_secret()`, with no `Display` and no `Serialize`, and a `Debug` that prints
//!   `Name([redacted])`. A struct that holds secrets only through such types can derive
//!   `Debug` instead of writing a redacting one by hand.

/// Declares a validated string newtype. See the module documentation.
///
/// ```ignore
/// string_newtype! {
///     /// A role name such as `manager`.
///     pub struct RoleName;
/// }
/// ```
#[macro_export]
macro_rules! string_newtype {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        $vis struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Declares a secret string newtype. See the module documentation.
///
/// ```ignore
/// secret_newtype! {
///     /// A refresh token as presented by a client.
///     pub struct RefreshTokenText;
/// }
/// ```
#[macro_export]
macro_rules! secret_newtype {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $name(::secrecy::SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl ::std::convert::Into<String>) -> Self {
                Self(::secrecy::SecretString::from(value.into()))
            }

            /// The secret itself: call this only where the value is used (hashed,
            /// compared, sent to its owner), never to log or display it.
            pub fn expose_secret(&self) -> &str {
                ::secrecy::ExposeSecret::expose_secret(&self.0)
            }
        }

        impl ::std::convert::From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl ::std::convert::From<::secrecy::SecretString> for $name {
            fn from(value: ::secrecy::SecretString) -> Self {
                Self(value)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    string_newtype! {
        /// A test name.
        pub struct Name;
    }

    secret_newtype! {
        /// A test secret.
        pub struct Hidden;
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Holder {
        name: Name,
        secret: Hidden,
    }

    #[test]
    fn string_newtypes_print_and_serialize_as_the_bare_value() {
        let n = Name("alice".to_owned());
        assert_eq!(n.to_string(), "alice");
        assert_eq!(n.as_str(), "alice");
        assert_eq!(format!("{n:?}"), "Name(\"alice\")");
        assert_eq!(serde_json::to_string(&n).ok().as_deref(), Some("\"alice\""));
        assert_eq!(n.into_string(), "alice");
    }

    #[test]
    fn secret_newtypes_never_print_their_value() {
        let h = Hidden::new("hunter2-hunter2");
        assert_eq!(h.expose_secret(), "hunter2-hunter2");
        assert_eq!(format!("{h:?}"), "Hidden([redacted])");
        let holder = Holder {
            name: Name("bob".to_owned()),
            secret: h,
        };
        let printed = format!("{holder:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("Hidden([redacted])"), "{printed}");
    }
}
