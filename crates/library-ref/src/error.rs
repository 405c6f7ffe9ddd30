//! The error of reference parsing.

use std::fmt;

/// Why a text is not a valid `library:` reference.
///
/// Each kind can be matched without looking at messages; the message of
/// each names the part of the reference that is wrong.
///
/// ```
/// use library_ref::{Ref, RefError};
///
/// match Ref::parse("library://alice@example.org/tools/samtools") {
///     Err(RefError::UserNotPermitted) => {}
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefError {
    /// The scheme is not `library`.
    SchemeNotValid,
    /// The reference carries user information (`user@host`).
    UserNotPermitted,
    /// The reference carries a query (`?...`).
    QueryNotPermitted,
    /// The reference carries a fragment (`#...`).
    FragmentNotPermitted,
    /// The path is empty or holds more than one `:`.
    PathNotValid,
    /// A `:` is followed by no tag.
    TagsNotValid,
    /// The text is not a URI at all; the message says what is wrong.
    Malformed(String),
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefError::SchemeNotValid => f.write_str("library: ref scheme not valid (expected \"library:\")"),
            RefError::UserNotPermitted => f.write_str("library: user not permitted in ref (remove \"user@\" before the host)"),
            RefError::QueryNotPermitted => f.write_str("library: query not permitted in ref (remove the \"?...\" part)"),
            RefError::FragmentNotPermitted => f.write_str("library: fragment not permitted in ref (remove the \"#...\" part)"),
            RefError::PathNotValid => f.write_str("library: ref path not valid (the path must be non-empty, with at most one \":\" before the tags)"),
            RefError::TagsNotValid => f.write_str("library: ref tags not valid (a \":\" must be followed by one or more tags)"),
            RefError::Malformed(why) => write!(f, "library: ref is not a valid URI: {why}"),
        }
    }
}

impl std::error::Error for RefError {}
