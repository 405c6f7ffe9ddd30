//! The legacy validators of library paths, without a regex engine.
//!
//! A *part* (entity, collection, container or tag name) is one or more
//! lowercase letters or digits, in groups separated by single `.`, `_` or
//! `-`: `[a-z0-9]+([._-][a-z0-9]+)*`. None of these functions allocates.

/// Whether `s` matches `[a-z0-9]+([._-][a-z0-9]+)*`, with `seps` as the
/// allowed separators.
fn is_part_with(s: &[u8], seps: &[u8]) -> bool {
    let mut prev_alnum = false;
    for &b in s {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            prev_alnum = true;
        } else if prev_alnum && seps.contains(&b) {
            prev_alnum = false;
        } else {
            return false;
        }
    }
    prev_alnum
}

const PART_SEPS: &[u8] = b"._-";
const TAG_LIST_SEPS: &[u8] = b",._-";

fn strip_scheme(s: &str) -> &str {
    s.strip_prefix("library://").unwrap_or(s)
}

/// Whether every `/`-separated component of `path` is a part, and their
/// number lies in `counts`.
fn is_parts_path(path: &str, counts: std::ops::RangeInclusive<usize>) -> bool {
    let mut n = 0;
    for component in path.split('/') {
        n += 1;
        if n > *counts.end() || !is_part_with(component.as_bytes(), PART_SEPS) {
            return false;
        }
    }
    counts.contains(&n)
}

/// Whether `s` is valid as one component of a library path: an entity,
/// collection, container or tag name.
///
/// ```
/// use library_ref::is_ref_part;
/// assert!(is_ref_part("abc-123"));
/// assert!(!is_ref_part("-abc"));
/// assert!(!is_ref_part("Abc"));
/// ```
pub fn is_ref_part(s: &str) -> bool {
    is_part_with(s.as_bytes(), PART_SEPS)
}

/// Whether `s` is a valid reference to pull:
/// `[library://][entity/][collection/]container[:tag]`.
///
/// ```
/// use library_ref::is_library_pull_ref;
/// assert!(is_library_pull_ref("library://alpine:latest"));
/// assert!(is_library_pull_ref("entity/collection/container:1.0"));
/// assert!(!is_library_pull_ref("a/b/c/d"));
/// ```
pub fn is_library_pull_ref(s: &str) -> bool {
    let rest = strip_scheme(s);
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    is_parts_path(path, 1..=3) && tag.is_none_or(|t| is_part_with(t.as_bytes(), PART_SEPS))
}

/// Whether `s` is a valid reference to push:
/// `[library://]entity/collection/container[:tag[,tag...]]`.
///
/// ```
/// use library_ref::is_library_push_ref;
/// assert!(is_library_push_ref("alice/tools/samtools:1.17,latest"));
/// assert!(!is_library_push_ref("library://samtools:latest"));
/// ```
pub fn is_library_push_ref(s: &str) -> bool {
    let rest = strip_scheme(s);
    let (path, tags) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    is_parts_path(path, 3..=3) && tags.is_none_or(|t| is_part_with(t.as_bytes(), TAG_LIST_SEPS))
}

/// Whether `s` names an image by its content: `sha256.` and 64 lowercase
/// hex digits, or `sif.` and a lowercase UUID.
///
/// ```
/// use library_ref::is_image_hash;
/// assert!(is_image_hash("sif.5574b72c-7705-49cc-874e-424fc3b78116"));
/// assert!(!is_image_hash("sha256.abc"));
/// ```
pub fn is_image_hash(s: &str) -> bool {
    fn lower_hex(b: &[u8]) -> bool {
        b.iter()
            .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    }
    if let Some(hex) = s.strip_prefix("sha256.") {
        return hex.len() == 64 && lower_hex(hex.as_bytes());
    }
    if let Some(uuid) = s.strip_prefix("sif.") {
        let b = uuid.as_bytes();
        return b.len() == 36
            && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
            && [0..8, 9..13, 14..18, 19..23, 24..36]
                .into_iter()
                .all(|r| lower_hex(&b[r]));
    }
    false
}

/// A library path split into its components by [`parse_library_path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LibraryPath {
    /// The entity (user or group); empty when the path has fewer than three components.
    pub entity: String,
    /// The collection; empty when the path has only one component.
    pub collection: String,
    /// The container.
    pub container: String,
    /// The tags after the container's `:`; empty when none were given.
    pub tags: Vec<String>,
}

/// Split `[library://][[entity/]collection/]container[:tags]` into its
/// components, without validating them.
///
/// One component is a container, two are collection and container, three
/// are entity, collection and container; any other number gives every field
/// empty. The tags are the text between the container's first and second
/// `:`, split on `,`; anything after a second `:` is ignored.
///
/// ```
/// use library_ref::parse_library_path;
///
/// let p = parse_library_path("library://alice/tools/samtools:1.17,latest");
/// assert_eq!(p.entity, "alice");
/// assert_eq!(p.collection, "tools");
/// assert_eq!(p.container, "samtools");
/// assert_eq!(p.tags, ["1.17", "latest"]);
/// ```
pub fn parse_library_path(s: &str) -> LibraryPath {
    let rest = strip_scheme(s);
    let mut parts = rest.split('/');
    let (entity, collection, container) =
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(c), None, None, None) => ("", "", c),
            (Some(b), Some(c), None, None) => ("", b, c),
            (Some(a), Some(b), Some(c), None) => (a, b, c),
            _ => return LibraryPath::default(),
        };
    let (container, tags) = match container.split_once(':') {
        None => (container, Vec::new()),
        Some((name, after)) => {
            let tags = after.split(':').next().unwrap_or("");
            (name, tags.split(',').map(str::to_owned).collect())
        }
    };
    LibraryPath {
        entity: entity.to_owned(),
        collection: collection.to_owned(),
        container: container.to_owned(),
        tags,
    }
}
