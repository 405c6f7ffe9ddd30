//! Parsing and validation of `library://` references of the Container
//! Library API (the references of Singularity and Apptainer images).
//!
//! This crate has no dependencies and does no I/O, so that any tool can
//! validate references without pulling in an HTTP stack.
//!
//! Two grammars exist side by side:
//!
//! - the URI form, [`Ref`]: `library:[//host][/]path[:tags]`, parsed by
//!   [`Ref::parse`] (strict: `library://a/b` has host `a`) or
//!   [`Ref::parse_ambiguous`] (`library://a` and `library://a/b/c` have no
//!   host), and written back by `Display`;
//! - the legacy validators of library paths: [`is_library_pull_ref`],
//!   [`is_library_push_ref`], [`is_ref_part`], [`is_image_hash`], and the
//!   splitter [`parse_library_path`].
//!
//! Both behave exactly like the reference Go client's, quirks included,
//! so that a reference accepted by one tool is accepted by the others.
//!
//! # Example
//!
//! ```
//! use library_ref::{is_library_push_ref, parse_library_path, Ref};
//!
//! let r: Ref = "library://alice/tools/samtools:1.17".parse()?;
//! assert_eq!(r.host, "alice"); // strict parsing: the first component is a host
//!
//! let r = Ref::parse_ambiguous("library://alice/tools/samtools:1.17")?;
//! assert_eq!((r.host.as_str(), r.path.as_str()), ("", "alice/tools/samtools"));
//!
//! assert!(is_library_push_ref("alice/tools/samtools:1.17,latest"));
//! assert_eq!(parse_library_path("tools/samtools").collection, "tools");
//! # Ok::<(), library_ref::RefError>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod reference;
mod uri;
mod validate;

pub use error::RefError;
pub use reference::Ref;
pub use validate::{
    is_image_hash, is_library_pull_ref, is_library_push_ref, is_ref_part, parse_library_path,
    LibraryPath,
};

/// The scheme of library references.
pub const SCHEME: &str = "library";
