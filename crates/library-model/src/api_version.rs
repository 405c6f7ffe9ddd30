//! The library API versions that gate endpoints, and how they compare.

/// The library API version from which the v2 upload endpoints exist.
pub const API_VERSION_V2_UPLOAD: &str = "2.0.0-alpha.1";
/// The library API version from which tags are kept per architecture.
pub const API_VERSION_V2_ARCH_TAGS: &str = "2.0.0-alpha.2";

/// Whether the API version a server reports is at least `required`, as
/// the library's API gates compare them: strict semantic versions
/// (`MAJOR.MINOR.PATCH[-pre][+build]`), pre-releases ordered, build
/// metadata ignored. A version that does not parse is never enough.
///
/// ```
/// use library_model::{version_at_least, API_VERSION_V2_UPLOAD};
/// assert!(version_at_least("2.0.0-alpha.2", API_VERSION_V2_UPLOAD));
/// assert!(!version_at_least("1.0.0", API_VERSION_V2_UPLOAD));
/// assert!(!version_at_least("v2.0.0", "2.0.0"));
/// ```
pub fn version_at_least(server: &str, required: &str) -> bool {
    let (Ok(mut have), Ok(mut need)) = (
        semver::Version::parse(server),
        semver::Version::parse(required),
    ) else {
        return false;
    };
    have.build = semver::BuildMetadata::EMPTY;
    need.build = semver::BuildMetadata::EMPTY;
    have >= need
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_like_semver() {
        assert!(version_at_least("2.0.0-alpha.2", "2.0.0-alpha.1"));
        assert!(version_at_least("2.0.0-alpha.2", "2.0.0-alpha.2"));
        assert!(!version_at_least("2.0.0-alpha.1", "2.0.0-alpha.2"));
        assert!(version_at_least("2.0.0", "2.0.0-alpha.2"));
        assert!(!version_at_least("1.0.0", "2.0.0-alpha.1"));
        assert!(version_at_least("2.1.3", "2.0.0-alpha.2"));
        assert!(version_at_least("2.0.0-beta", "2.0.0-alpha.2"));
        assert!(version_at_least("2.0.0-alpha.10", "2.0.0-alpha.2"));
        assert!(!version_at_least("", "2.0.0-alpha.1"));
        assert!(!version_at_least("garbage", "2.0.0-alpha.1"));
        assert!(!version_at_least("v2.0.0", "2.0.0"));
        assert!(!version_at_least("02.0.0", "2.0.0"));
        assert!(version_at_least(
            "2.0.0-alpha.2+build.1",
            "2.0.0-alpha.2+zzz"
        ));
    }
}
