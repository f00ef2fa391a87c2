//! [`Method`] by name, as command lines and configuration files spell it.

use std::fmt;
use std::str::FromStr;

use crate::operator::Method;

impl Method {
    /// Every method, in the order listings show them.
    pub const ALL: &'static [Method] = &[
        Method::Auto,
        Method::Dense,
        Method::Structured,
        Method::MatrixFree,
    ];

    /// The method's name: `auto`, `dense`, `structured`, `matrix-free` (lower case; words
    /// joined by `-`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Dense => "dense",
            Method::Structured => "structured",
            Method::MatrixFree => "matrix-free",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Method::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown method '{given}'; expected one of: {}", accepted_names())]
pub struct ParseMethodError {
    /// The name given.
    pub given: String,
}

fn accepted_names() -> String {
    Method::ALL
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Method {
    type Err = ParseMethodError;

    /// A method by its [`name`](Method::name), any case, `_` accepted for `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Method::ALL
            .iter()
            .copied()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| ParseMethodError {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_reads_back_from_its_name() {
        for &m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
            assert_eq!(m.to_string().to_uppercase().parse::<Method>(), Ok(m));
        }
    }

    #[test]
    fn names_match_the_serde_names() {
        // Config files (serde, snake_case) and command lines name methods alike, up to '_'/'-'.
        for &m in Method::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json.trim_matches('"').replace('_', "-"), m.name());
        }
    }

    #[test]
    fn an_unknown_name_lists_the_accepted_ones() {
        let e = "lanczos".parse::<Method>().unwrap_err();
        assert_eq!(e.given, "lanczos");
        assert_eq!(
            e.to_string(),
            "unknown method 'lanczos'; expected one of: auto, dense, structured, matrix-free"
        );
    }
}
