//! Image references as the commands take them: parsed with `library-ref`,
//! checked for what each command needs, and matched against the configured
//! library when they name a host.

use library_ref::{is_library_pull_ref, is_library_push_ref, parse_library_path, Ref};
use serde::Serialize;
use url::Url;

use crate::errors::CliError;

const PART_RULE: &str =
    "each part lowercase letters and digits, separated by single '.', '_' or '-'";

/// Parse a reference, with or without its `library:` scheme.
///
/// `library://a/b/c` and `library://a` have no host; `library://host/a/b/c`
/// and `library://host/a/b` name one (as in Singularity and Apptainer).
pub fn parse(text: &str) -> Result<Ref, String> {
    let has_scheme = text
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("library:"));
    let full = if has_scheme {
        text.to_string()
    } else if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "{scheme}:// references are not library references (use library:// or a plain path)"
        ));
    } else {
        format!("library:{text}")
    };
    Ref::parse_ambiguous(&full).map_err(|e| e.to_string())
}

/// The path and tags of a reference joined back: `path[:t1,t2]`.
pub fn path_and_tags(r: &Ref) -> String {
    if r.tags.is_empty() {
        r.path.clone()
    } else {
        format!("{}:{}", r.path, r.tags.join(","))
    }
}

/// Fail when the reference names a host other than the configured
/// library's (and its port, when it gives one).
pub fn check_host(text: &str, r: &Ref, base: &Url) -> Result<(), CliError> {
    if r.host.is_empty() {
        return Ok(());
    }
    let base_host = base.host_str().unwrap_or("");
    let base_host = base_host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(base_host);
    let same_host = r.hostname().eq_ignore_ascii_case(base_host);
    let same_port = match (r.port(), base.port_or_known_default()) {
        (Some(p), Some(bp)) => p.parse::<u16>().ok() == Some(bp),
        (Some(_), None) => false,
        (None, _) => true,
    };
    if same_host && same_port {
        return Ok(());
    }
    Err(CliError::usage(
        format!(
            "reference {text:?} names the library host {:?}, but the configured library is {}",
            r.host,
            base.as_str().trim_end_matches('/')
        ),
        format!(
            "point --url (or LIBRARY_URL) at that library, or leave the host out (library:{})",
            path_and_tags(r)
        ),
    ))
}

/// What to pull or show: `path` (1 to 3 parts) and one tag (default `latest`).
pub fn image_target(text: &str, r: &Ref) -> Result<(String, String), CliError> {
    if r.tags.len() > 1 {
        return Err(CliError::usage(
            format!(
                "reference {text:?} names {} tags ({})",
                r.tags.len(),
                r.tags.join(",")
            ),
            "name one tag",
        ));
    }
    let tag = r.tags.first().cloned().unwrap_or_else(|| "latest".into());
    if !is_library_pull_ref(&format!("{}:{tag}", r.path)) {
        return Err(CliError::usage(
            format!("{text:?} is not a valid image reference"),
            format!("write [library://][entity/][collection/]container[:tag], {PART_RULE}"),
        ));
    }
    Ok((r.path.clone(), tag))
}

/// Where to push: `entity/collection/container` and its tags (default
/// `latest`).
pub fn push_target(text: &str, r: &Ref) -> Result<(String, Vec<String>), CliError> {
    if !is_library_push_ref(&path_and_tags(r)) {
        return Err(CliError::usage(
            format!("{text:?} is not a valid push reference"),
            format!("write [library://]entity/collection/container[:tag[,tag...]], {PART_RULE}"),
        ));
    }
    let tags = if r.tags.is_empty() {
        vec!["latest".to_string()]
    } else {
        r.tags.clone()
    };
    Ok((r.path.clone(), tags))
}

/// A container: `entity/collection/container`, without tags.
pub fn container_target(text: &str, r: &Ref) -> Result<String, CliError> {
    if !r.tags.is_empty() {
        return Err(CliError::usage(
            format!("{text:?} names tags, but a container is wanted"),
            "leave out the ':' and the tags",
        ));
    }
    if !is_library_push_ref(&r.path) {
        return Err(CliError::usage(
            format!("{text:?} is not a valid container reference"),
            format!("write [library://]entity/collection/container, {PART_RULE}"),
        ));
    }
    Ok(r.path.clone())
}

/// What to delete: `entity/collection/container` and the one tag it must name.
pub fn delete_target(text: &str, r: &Ref) -> Result<String, CliError> {
    if r.tags.len() != 1 {
        return Err(CliError::usage(
            format!("reference {text:?} must name exactly one tag to delete"),
            "write [library://]entity/collection/container:tag",
        ));
    }
    let joined = path_and_tags(r);
    if !is_library_push_ref(&joined) {
        return Err(CliError::usage(
            format!("{text:?} is not a valid image reference"),
            format!("write [library://]entity/collection/container:tag, {PART_RULE}"),
        ));
    }
    Ok(joined)
}

/// What `scs-library ref` reports about a text.
#[derive(Debug, Serialize)]
pub struct RefReport {
    /// The text given.
    pub input: String,
    /// Whether it passes the check asked for (pull, push, or either).
    pub valid: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reference written back in its canonical form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// The host it names, empty for the configured library.
    pub host: String,
    /// The path, without tags.
    pub path: String,
    /// Entity, collection and container (empty when the path lacks them).
    pub entity: String,
    /// The collection.
    pub collection: String,
    /// The container.
    pub container: String,
    /// The tags, empty when none.
    pub tags: Vec<String>,
    /// Valid to pull.
    pub pull: bool,
    /// Valid to push.
    pub push: bool,
}

/// Which check `scs-library ref` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Valid to pull or to push.
    Any,
    /// Valid to pull.
    Pull,
    /// Valid to push.
    Push,
}

/// Examine a text without any network.
pub fn report(text: &str, want: Want) -> RefReport {
    let mut rep = RefReport {
        input: text.to_string(),
        valid: false,
        error: None,
        canonical: None,
        host: String::new(),
        path: String::new(),
        entity: String::new(),
        collection: String::new(),
        container: String::new(),
        tags: Vec::new(),
        pull: false,
        push: false,
    };
    let r = match parse(text) {
        Ok(r) => r,
        Err(e) => {
            rep.error = Some(e);
            return rep;
        }
    };
    let joined = path_and_tags(&r);
    let parts = parse_library_path(&r.path);
    rep.canonical = Some(r.to_string());
    rep.host = r.host.clone();
    rep.path = r.path.clone();
    rep.entity = parts.entity;
    rep.collection = parts.collection;
    rep.container = parts.container;
    rep.tags = r.tags.clone();
    rep.pull = r.tags.len() <= 1 && is_library_pull_ref(&joined);
    rep.push = is_library_push_ref(&joined);
    rep.valid = match want {
        Want::Any => rep.pull || rep.push,
        Want::Pull => rep.pull,
        Want::Push => rep.push,
    };
    if !rep.valid {
        rep.error = Some(match want {
            Want::Push => format!("not a push reference: [library://]entity/collection/container[:tag[,tag...]], {PART_RULE}"),
            Want::Pull if r.tags.len() > 1 => "a pull reference names at most one tag".to_string(),
            _ => format!(
                "not an image reference: [library://][entity/][collection/]container[:tag], {PART_RULE}"
            ),
        });
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let r = parse("alice/tools/samtools:1.17").unwrap();
        assert_eq!(
            (r.host.as_str(), r.path.as_str()),
            ("", "alice/tools/samtools")
        );
        assert_eq!(r.tags, ["1.17"]);
        let r = parse("library://alice/tools/samtools:1.17,latest").unwrap();
        assert_eq!(r.host, "");
        assert_eq!(r.tags, ["1.17", "latest"]);
        let r = parse("library://example.org:8443/alice/tools/samtools").unwrap();
        assert_eq!(r.host, "example.org:8443");
        assert_eq!(r.path, "alice/tools/samtools");
        let r = parse("LIBRARY:alpine").unwrap();
        assert_eq!(r.path, "alpine");
        assert!(parse("docker://alpine").is_err());
        assert!(parse("a/b/c:").is_err());
        assert!(parse("a/b/c?x=1").is_err());
    }

    #[test]
    fn hosts() {
        let base = Url::parse("http://127.0.0.1:8080/").unwrap();
        let r = parse("library://127.0.0.1:8080/a/b/c").unwrap();
        assert!(check_host("x", &r, &base).is_ok());
        let r = parse("library://127.0.0.1/a/b/c").unwrap();
        assert!(check_host("x", &r, &base).is_ok());
        let r = parse("library://127.0.0.1:9/a/b/c").unwrap();
        assert!(check_host("x", &r, &base).is_err());
        let r = parse("library://example.org/a/b/c").unwrap();
        let e = check_host("x", &r, &base).unwrap_err();
        assert_eq!(e.code, crate::errors::USAGE);
        let base = Url::parse("https://Library.Example.org/").unwrap();
        let r = parse("library://library.example.org:443/a/b/c").unwrap();
        assert!(check_host("x", &r, &base).is_ok());
    }

    #[test]
    fn targets() {
        let r = parse("a/b/c").unwrap();
        assert_eq!(
            image_target("a/b/c", &r).unwrap(),
            ("a/b/c".into(), "latest".into())
        );
        let r = parse("c:v1").unwrap();
        assert_eq!(image_target("", &r).unwrap(), ("c".into(), "v1".into()));
        let r = parse("a/b/c:v1,v2").unwrap();
        assert!(image_target("", &r).is_err());
        assert_eq!(
            push_target("", &r).unwrap(),
            ("a/b/c".into(), vec!["v1".into(), "v2".into()])
        );
        let r = parse("b/c:v1").unwrap();
        assert!(push_target("", &r).is_err());
        assert!(delete_target("", &r).is_err());
        let r = parse("a/b/c").unwrap();
        assert_eq!(push_target("", &r).unwrap().1, ["latest"]);
        assert!(delete_target("", &r).is_err());
        assert_eq!(container_target("", &r).unwrap(), "a/b/c");
        let r = parse("a/b/C").unwrap();
        assert!(container_target("", &r).is_err());
    }

    #[test]
    fn reports() {
        let rep = report("library://alice/tools/samtools:1.17,latest", Want::Any);
        assert!(rep.valid && rep.push && !rep.pull);
        assert_eq!(rep.entity, "alice");
        assert!(!report("library://alice/tools/samtools:1.17,latest", Want::Pull).valid);
        let rep = report("alpine", Want::Any);
        assert!(rep.valid && rep.pull && !rep.push);
        assert_eq!(rep.container, "alpine");
        assert!(!report("Alpine", Want::Any).valid);
        assert!(report("docker://x", Want::Any).error.is_some());
    }
}
