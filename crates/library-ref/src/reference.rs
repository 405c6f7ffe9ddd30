//! `library:` references in their URI form.

use std::fmt;
use std::str::FromStr;

use crate::uri;
use crate::{RefError, SCHEME};

/// A parsed `library:` reference: an optional host, a path and tags.
///
/// The general form is `library:[//host][/]path[:tags]`, where `tags` is a
/// comma-separated list of one or more tags. All of these are valid:
///
/// ```text
/// library:path:tags
/// library:/path:tags
/// library:///path:tags
/// library://host/path:tags
/// library://host:port/path:tags
/// ```
///
/// `host` holds the host name and the port, if any, as written in the
/// reference (`[fe80::1]:443` keeps its brackets); [`Ref::hostname`] and
/// [`Ref::port`] split it. `path` has no leading `/`. An empty `tags` means
/// the reference names no tag.
///
/// # Examples
///
/// ```
/// use library_ref::Ref;
///
/// let r = Ref::parse("library://cloud.example:443/alice/tools/samtools:1.17,latest")?;
/// assert_eq!(r.host, "cloud.example:443");
/// assert_eq!(r.hostname(), "cloud.example");
/// assert_eq!(r.port(), Some("443"));
/// assert_eq!(r.path, "alice/tools/samtools");
/// assert_eq!(r.tags, ["1.17", "latest"]);
/// assert_eq!(r.to_string(), "library://cloud.example:443/alice/tools/samtools:1.17,latest");
/// # Ok::<(), library_ref::RefError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Ref {
    /// Host name and optional port (`host`, `host:port`, `[ipv6]:port`); empty when absent.
    pub host: String,
    /// The path, such as `entity/collection/container`, without a leading `/`.
    pub path: String,
    /// The tags given after the `:`; empty when none were given.
    pub tags: Vec<String>,
}

impl Ref {
    /// Parse a reference strictly: anything after `library://` up to the
    /// next `/` is the host.
    ///
    /// Errors, checked in this order: the text is not a URI
    /// ([`RefError::Malformed`]); the scheme is not `library`
    /// (case-insensitive); user info is present (even an empty `@`); a
    /// query is present; a fragment is present; the path is empty or has
    /// more than one `:`; the text after the `:` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use library_ref::{Ref, RefError};
    ///
    /// let r = Ref::parse("library:entity/collection/container:latest")?;
    /// assert_eq!(r.host, "");
    /// assert_eq!(r.path, "entity/collection/container");
    /// assert_eq!(r.tags, ["latest"]);
    ///
    /// // With `//`, the first component is a host.
    /// let r = Ref::parse("library://example.org/alpine")?;
    /// assert_eq!((r.host.as_str(), r.path.as_str()), ("example.org", "alpine"));
    ///
    /// assert_eq!(Ref::parse("docker://alpine"), Err(RefError::SchemeNotValid));
    /// assert_eq!(Ref::parse("library:alpine:"), Err(RefError::TagsNotValid));
    /// # Ok::<(), RefError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Ref, RefError> {
        let u = uri::parse(s).map_err(RefError::Malformed)?;
        from_uri(&u)
    }

    /// Parse a reference, reading `library://a` and `library://a/b/c` as
    /// references without a host.
    ///
    /// Tools accept `library://entity/collection/container` to mean a path
    /// on the default library, which makes the first component ambiguous.
    /// When the text starts with `library://` (and not `library:///`) and
    /// its decoded path has one or three `/`-separated components, it is
    /// read as host-less; every other text is parsed as [`Ref::parse`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use library_ref::Ref;
    ///
    /// let r = Ref::parse_ambiguous("library://alice/tools/samtools:latest")?;
    /// assert_eq!(r.host, "");
    /// assert_eq!(r.path, "alice/tools/samtools");
    ///
    /// let r = Ref::parse_ambiguous("library://example.org/alpine")?;
    /// assert_eq!(r.host, "example.org");
    /// # Ok::<(), library_ref::RefError>(())
    /// ```
    pub fn parse_ambiguous(s: &str) -> Result<Ref, RefError> {
        const PREFIX: &str = "library://";
        if let Some(rest) = s.strip_prefix(PREFIX) {
            if !rest.starts_with('/') {
                let hostless = format!("library:///{rest}");
                let u = uri::parse(&hostless).map_err(RefError::Malformed)?;
                let path = u.path.strip_prefix('/').unwrap_or(&u.path);
                let components = path.split('/').count();
                if components == 1 || components == 3 {
                    return from_uri(&u);
                }
            }
        }
        Ref::parse(s)
    }

    /// The host name without the port; an IPv6 address without its brackets.
    ///
    /// Malformed hosts split as the reference client splits them: at the
    /// first `:` unless a `]` is present (`::1` gives `""`, `h:1:2` gives `h`).
    ///
    /// ```
    /// # use library_ref::Ref;
    /// let r = Ref::parse("library://[fe80::1]:443/alpine")?;
    /// assert_eq!(r.hostname(), "fe80::1");
    /// # Ok::<(), library_ref::RefError>(())
    /// ```
    pub fn hostname(&self) -> &str {
        split_host_port(&self.host).0
    }

    /// The port, without the leading `:`, when the host names one.
    ///
    /// With a `]` in the host, a port only follows `]:`; otherwise it is
    /// everything after the first `:` (`::1` gives `:1`), unvalidated.
    ///
    /// ```
    /// # use library_ref::Ref;
    /// assert_eq!(Ref::parse("library://host:8443/a")?.port(), Some("8443"));
    /// assert_eq!(Ref::parse("library://host/a")?.port(), None);
    /// # Ok::<(), library_ref::RefError>(())
    /// ```
    pub fn port(&self) -> Option<&str> {
        split_host_port(&self.host).1
    }
}

fn from_uri(u: &uri::Uri<'_>) -> Result<Ref, RefError> {
    if !u.scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(RefError::SchemeNotValid);
    }
    if u.has_user {
        return Err(RefError::UserNotPermitted);
    }
    if !u.query.is_empty() {
        return Err(RefError::QueryNotPermitted);
    }
    if !u.fragment.is_empty() {
        return Err(RefError::FragmentNotPermitted);
    }
    let raw_path: &str = match u.opaque {
        Some(o) if !o.is_empty() => o,
        _ => &u.path,
    };
    if raw_path.is_empty() {
        return Err(RefError::PathNotValid);
    }
    let mut pieces = raw_path.split(':');
    let path = pieces.next().unwrap_or("");
    let raw_tags = pieces.next();
    if pieces.next().is_some() {
        return Err(RefError::PathNotValid);
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Err(RefError::PathNotValid);
    }
    let tags = match raw_tags {
        None => Vec::new(),
        Some("") => return Err(RefError::TagsNotValid),
        Some(t) => t.split(',').map(str::to_owned).collect(),
    };
    Ok(Ref {
        host: u.host.clone().into_owned(),
        path: path.to_owned(),
        tags,
    })
}

/// Split `host[:port]`: the port only when it is all digits, the brackets
/// of an IPv6 literal removed.
/// The reference client's split, kept for malformed hosts too: without a
/// `:` the whole host is the name; with a `]` the name is what precedes it
/// (less a leading `[`) and a port only follows `]:`; otherwise host and port
/// part at the **first** `:` (so an unbracketed `::1` gives `""` and `:1`).
fn split_host_port(host: &str) -> (&str, Option<&str>) {
    let Some(colon) = host.find(':') else {
        return (host, None);
    };
    let name = match host.find(']') {
        Some(i) => host[..i].strip_prefix('[').unwrap_or(&host[..i]),
        None => &host[..colon],
    };
    let port = if let Some(i) = host.find("]:") {
        &host[i + 2..]
    } else if host.contains(']') {
        ""
    } else {
        &host[colon + 1..]
    };
    (name, Some(port).filter(|p| !p.is_empty()))
}

impl fmt::Display for Ref {
    /// `library:path[:tags]` without a host; `library://host/path[:tags]`
    /// with one, the host and path percent-encoded as in a URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        f.write_str(":")?;
        if self.host.is_empty() {
            f.write_str(&self.path)?;
            if !self.tags.is_empty() {
                f.write_str(":")?;
                write_tags(&self.tags, f)?;
            }
            return Ok(());
        }
        f.write_str("//")?;
        uri::escape_host(&self.host, f)?;
        let has_path = !self.path.is_empty() || !self.tags.is_empty();
        if has_path && !self.path.starts_with('/') {
            f.write_str("/")?;
        }
        uri::escape_path(&self.path, f)?;
        if !self.tags.is_empty() {
            f.write_str(":")?;
            for (i, tag) in self.tags.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                uri::escape_path(tag, f)?;
            }
        }
        Ok(())
    }
}

fn write_tags(tags: &[String], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(tag)?;
    }
    Ok(())
}

impl FromStr for Ref {
    type Err = RefError;

    /// The same as [`Ref::parse`].
    fn from_str(s: &str) -> Result<Ref, RefError> {
        Ref::parse(s)
    }
}
