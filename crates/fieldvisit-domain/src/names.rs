//! Domain values named by a fixed word (`verified`, `closed`, `grid`): each value has one name,
//! the same in JSON, in the database and on the command line. `named!` gives an enum its names;
//! the database layer stores a value as its `as_str` and reads it back with `FromStr`, so a type's
//! text lives in one place (the enum's serde names are the same words, which a test checks).

use std::fmt;

/// Text that names no value of a domain type: a bad input, or a stored value this code does not
/// know (the database layer reports that as an internal error, it never panics on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was expected (`role`, `verdict`, ...).
    pub what: &'static str,
    /// The text given.
    pub name: String,
    /// The names it could have been, comma-separated.
    pub expected: String,
}

impl UnknownName {
    pub fn new(what: &'static str, name: &str, expected: &[&str]) -> Self {
        UnknownName { what, name: name.to_owned(), expected: expected.join(", ") }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}` (expected one of {})", self.what, self.name, self.expected)
    }
}

impl std::error::Error for UnknownName {}

/// Gives the enum `$ty` (whose serde names must be the same words) its names: `ALL` (declaration
/// order), `as_str`, `Display`, `FromStr` and `TryFrom<String>` (both failing with
/// [`UnknownName`] for any other text; `$what` names the type in that error).
macro_rules! named {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: [$ty; [$(stringify!($variant)),+].len()] = [$($ty::$variant),+];

            /// Its name (in JSON, in the database, on the command line).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::names::UnknownName::new($what, s, &$ty::ALL.map($ty::as_str))),
                }
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::names::UnknownName;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::access::Role;
    use crate::compliance::{Review, ReviewDecision};
    use crate::coverage::PeriodStatus;
    use crate::export::ExportStatus;
    use crate::outlet::{ChannelType, OutletStatus};
    use crate::territory::TerritoryLevel;
    use crate::visit::Verdict;
    use serde::Serialize;
    use std::fmt::Debug;
    use std::str::FromStr;

    /// Each value's name is its JSON text, and reads back as the value; other text is refused.
    fn names_round_trip<T>(all: &[T])
    where
        T: Copy + Debug + PartialEq + Serialize + FromStr<Err = super::UnknownName> + std::fmt::Display,
    {
        for v in all {
            let name = v.to_string();
            assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::Value::String(name.clone())), "{v:?}");
            assert_eq!(name.parse::<T>().ok(), Some(*v), "{name}");
        }
        let err = "no such name".parse::<T>().expect_err("an unknown name is refused");
        assert!(err.to_string().starts_with("unknown "), "{err}");
    }

    #[test]
    fn every_name_is_its_json_text_and_reads_back() {
        names_round_trip(&Role::ALL);
        names_round_trip(&Verdict::ALL);
        names_round_trip(&Review::ALL);
        names_round_trip(&ReviewDecision::ALL);
        names_round_trip(&ChannelType::ALL);
        names_round_trip(&OutletStatus::ALL);
        names_round_trip(&PeriodStatus::ALL);
        names_round_trip(&TerritoryLevel::ALL);
        names_round_trip(&ExportStatus::ALL);
    }

    #[test]
    fn the_error_names_the_type_and_the_choices() {
        let err = "root".parse::<Role>().expect_err("not a role");
        assert_eq!(err.to_string(), "unknown role `root` (expected one of admin, supervisor, auditor, manager, rep)");
    }
}
