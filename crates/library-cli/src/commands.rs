//! The commands: each parses its references, calls the client and prints
//! a table (or JSON with `--json`).

use std::path::PathBuf;
use std::time::Instant;

use library_client::model::{Image, SearchResults};
use library_client::{
    Client, Downloader, Pull, Push, SearchArgs, Transfer, UploadKind, API_VERSION_V2_ARCH_TAGS,
};
use serde::Serialize;
use serde_json::json;

use crate::cli::{self, Global};
use crate::errors::CliError;
use crate::output::{self, out, Table};
use crate::{progress, refs};

const SEE_WHAT_EXISTS: &str =
    "check the reference, the tag and --arch ('scs-library tags' and 'scs-library search' list what exists)";

fn parse_ref(text: &str) -> Result<library_ref::Ref, CliError> {
    refs::parse(text).map_err(|e| {
        CliError::usage(
            format!("invalid reference {text:?}: {e}"),
            "write [library://][entity/][collection/]container[:tag]",
        )
    })
}

/// A client, and the reference checked against its library's host.
async fn client_for(g: &Global, text: &str, r: &library_ref::Ref) -> Result<Client, CliError> {
    crate::remotes::client(g, text, Some(r)).await
}

/// The result of `pull`, as `--json` prints it.
#[derive(Debug, Serialize)]
struct PullResult {
    reference: String,
    arch: String,
    path: PathBuf,
    size: u64,
    sha256: String,
    verified: bool,
    transfer: &'static str,
    cache: &'static str,
    seconds: f64,
    bytes_per_second: u64,
    /// Parts in flight allowed at the end (0: no image byte travelled).
    streams: usize,
    /// Part requests sent again.
    retries: u64,
}

/// `pull <ref> [<dest>]`.
pub async fn pull(g: &Global, a: &cli::PullArgs) -> Result<(), CliError> {
    let r = parse_ref(&a.reference)?;
    let (path, tag) = refs::image_target(&a.reference, &r)?;
    let container = path.rsplit('/').next().unwrap_or(&path).to_string();
    let file_name = format!("{container}_{tag}.sif");
    let dest = match &a.dest {
        None => PathBuf::from(&file_name),
        Some(d) if d.is_dir() => d.join(&file_name),
        Some(d) => d.clone(),
    };
    // An existing file that is not a regular file stays as it is, and
    // nothing is sent. A regular file is compared with the image: if it
    // holds it, the pull is done; if not, it is kept without --force,
    // and no image byte is fetched.
    if !a.force && std::fs::symlink_metadata(&dest).is_ok_and(|m| !m.is_file()) {
        return Err(CliError::usage(
            format!("destination {} exists", dest.display()),
            "use --force to replace it, or give another destination",
        ));
    }
    let cache = crate::cache_cmd::for_pull(a.no_cache)?;
    let client = client_for(g, &a.reference, &r).await?;
    let arch = crate::envvars::pull_arch(a.arch.as_deref())
        .unwrap_or_else(|| library_client::default_arch().to_string());
    let shown = format!("library://{path}:{tag}");
    let sink = progress::sink(&format!("pulling {shown}"), g.quiet);
    let pull = Pull::new(path.clone())
        .tag(tag.clone())
        .arch(arch.clone())
        .downloader(Downloader {
            concurrency: crate::envvars::download_concurrency(a.concurrency)?
                .with_max(a.max_concurrency),
            part_size: crate::envvars::download_part_size(a.part_size)?,
        })
        .resume(a.resume)
        .replace_existing(a.force)
        .progress(sink);
    let pull = match cache {
        Some(c) => pull.cache(c),
        None => pull,
    };
    tracing::info!(reference = %shown, %arch, dest = %dest.display(), "pull");
    let started = Instant::now();
    let pulled = client
        .download_image(&dest, &pull)
        .await
        .map_err(|e| pull_error(&format!("pulling {shown} ({arch})"), &e))?;
    let elapsed = started.elapsed();
    let transfer = match pulled.transfer {
        Transfer::Ranged => "ranged",
        Transfer::Stream => "stream",
        Transfer::Oci => "oci",
        Transfer::Local => "local",
        _ => "other",
    };
    crate::cache_cmd::report(&pulled, g.quiet || g.json);
    let up_to_date = pulled.cache == library_client::CacheUse::UpToDate;
    if !pulled.verified && !g.json {
        // Said even with --quiet: the user should know what was not checked.
        eprintln!("warning: the library states no SHA-256 for {shown}: the image was not verified");
    }
    if g.json {
        output::json(&PullResult {
            reference: shown,
            arch,
            path: pulled.path.clone(),
            size: pulled.size,
            sha256: pulled.sha256.clone(),
            verified: pulled.verified,
            transfer,
            cache: crate::cache_cmd::use_name(&pulled.cache),
            seconds: elapsed.as_secs_f64(),
            bytes_per_second: output::bytes_per_second(pulled.size, elapsed),
            streams: pulled.streams,
            retries: pulled.retries,
        });
    } else if up_to_date {
        if !g.quiet {
            out(&format!(
                "{} is already up to date ({shown}, {}, sha256 {})",
                pulled.path.display(),
                output::size(pulled.size),
                pulled.sha256
            ));
        }
    } else if !g.quiet {
        out(&format!(
            "pulled {shown} ({arch}) to {}: {} in {} ({}), sha256 {}{}",
            pulled.path.display(),
            output::size(pulled.size),
            output::seconds(elapsed),
            output::rate(pulled.size, elapsed),
            pulled.sha256,
            if pulled.verified {
                ", verified"
            } else {
                ", not verified (the library states no hash)"
            }
        ));
    }
    Ok(())
}

/// A failed pull as the tool reports it: a destination that appeared while
/// the pull ran (without `--force`) is a usage error, as one that existed
/// before is.
fn pull_error(doing: &str, e: &library_client::Error) -> CliError {
    match e {
        library_client::Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            CliError::usage(
                format!("{doing}: {}", crate::errors::chain(e)),
                "use --force to replace it, or give another destination",
            )
        }
        e => CliError::client(doing, e, SEE_WHAT_EXISTS),
    }
}

/// The result of `push`, as `--json` prints it.
#[derive(Debug, Serialize)]
struct PushResult {
    reference: String,
    file: PathBuf,
    image_id: String,
    hash: String,
    size: u64,
    arch: String,
    tags: Vec<String>,
    upload: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_url: Option<String>,
    seconds: f64,
    bytes_per_second: u64,
}

/// `push <file> <ref>`.
pub async fn push(g: &Global, a: &cli::PushArgs) -> Result<(), CliError> {
    let r = parse_ref(&a.reference)?;
    let (path, tags) = refs::push_target(&a.reference, &r)?;
    match std::fs::metadata(&a.file) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(CliError::usage(
                format!("{} is not a file", a.file.display()),
                "give the path of a SIF image",
            ))
        }
        Err(e) => {
            return Err(CliError::usage(
                format!("{}: {e}", a.file.display()),
                "give the path of a SIF image",
            ))
        }
    }
    let client = client_for(g, &a.reference, &r).await?;
    let shown = format!("library://{path}:{}", tags.join(","));
    let sink = progress::sink(&format!("pushing {}", a.file.display()), g.quiet);
    let mut push = Push::new(path.clone())
        .tags(tags.clone())
        .description(a.description.clone())
        .concurrency(a.concurrency.with_max(a.max_concurrency))
        .progress(sink);
    if let Some(arch) = &a.arch {
        push = push.arch(arch.clone());
    }
    tracing::info!(reference = %shown, file = %a.file.display(), "push");
    let started = Instant::now();
    let pushed = client.upload_image(&a.file, &push).await.map_err(|e| {
        CliError::client(
            &format!("pushing {} to {shown}", a.file.display()),
            &e,
            "check the reference and that the library accepts new containers there",
        )
    })?;
    let elapsed = started.elapsed();
    let upload = match pushed.upload {
        UploadKind::AlreadyPresent => "already-present",
        UploadKind::V1 => "v1",
        UploadKind::V2Single => "v2-single",
        UploadKind::V2Multipart => "v2-multipart",
        UploadKind::Oci => "oci",
        _ => "other",
    };
    let container_url = pushed
        .complete
        .as_ref()
        .map(|c| c.container_url.clone())
        .filter(|u| !u.is_empty());
    if g.json {
        output::json(&PushResult {
            reference: shown,
            file: a.file.clone(),
            image_id: pushed.image_id.clone(),
            hash: pushed.hash.clone(),
            size: pushed.size,
            arch: pushed.arch.clone(),
            tags,
            upload,
            container_url,
            seconds: elapsed.as_secs_f64(),
            bytes_per_second: output::bytes_per_second(pushed.size, elapsed),
        });
    } else if !g.quiet {
        let how = if pushed.upload == UploadKind::AlreadyPresent {
            "the library already had it".to_string()
        } else {
            format!("{upload} upload")
        };
        out(&format!(
            "pushed {} to {shown} ({}): {} in {} ({}), {}, hash {}",
            a.file.display(),
            pushed.arch,
            output::size(pushed.size),
            output::seconds(elapsed),
            output::rate(pushed.size, elapsed),
            how,
            pushed.hash
        ));
    }
    Ok(())
}

/// `search <text>`.
pub async fn search(g: &Global, a: &cli::SearchArgs) -> Result<(), CliError> {
    if a.text.chars().count() < 3 {
        return Err(CliError::usage(
            format!("search text {:?} is too short", a.text),
            "search for at least 3 characters",
        ));
    }
    let client = crate::remotes::client(g, "", None).await?;
    let mut args = SearchArgs::new(a.text.clone());
    if let Some(arch) = &a.arch {
        args = args.arch(arch.clone());
    }
    if let Some(signed) = a.signed {
        args = args.signed(signed);
    }
    let found = client
        .search(&args)
        .await
        .map_err(|e| CliError::client(&format!("searching for {:?}", a.text), &e, ""))?;
    if g.json {
        output::json(&found);
    } else {
        out(&render_search(&found));
    }
    Ok(())
}

fn render_search(found: &SearchResults) -> String {
    let mut text = String::new();
    let mut section = |title: &str, t: Table| {
        if !t.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(title);
            text.push('\n');
            text.push_str(&t.render());
        }
    };
    let mut t = Table::new(["NAME", "DESCRIPTION"]);
    for e in found.entities.iter().flatten() {
        t.row(vec![format!("library://{}", e.name), e.description.clone()]);
    }
    section("Entities:", t);
    let mut t = Table::new(["NAME", "DESCRIPTION"]);
    for c in found.collections.iter().flatten() {
        t.row(vec![
            format!("library://{}/{}", c.entity_name, c.name),
            c.description.clone(),
        ]);
    }
    section("Collections:", t);
    let mut t = Table::new(["CONTAINER", "TAGS", "DESCRIPTION"]);
    for c in found.containers.iter().flatten() {
        t.row(vec![c.library_uri(), c.tag_list(), c.description.clone()]);
    }
    section("Containers:", t);
    let mut t = Table::new(["IMAGE", "TAGS", "ARCH", "SIZE", "SIGNED", "HASH"]);
    for i in found.images.iter().flatten() {
        t.row(vec![
            image_uri(i),
            i.tags.join(","),
            i.architecture.clone().unwrap_or_else(|| "-".into()),
            output::size_i64(i.size),
            output::yes_no(i.signed),
            output::short_hash(&i.hash),
        ]);
    }
    section("Images:", t);
    if text.is_empty() {
        text.push_str("No results.\n");
    }
    text
}

fn image_uri(i: &Image) -> String {
    if i.entity_name.is_empty() && i.collection_name.is_empty() && i.container_name.is_empty() {
        return format!("(image {})", i.id);
    }
    format!(
        "library://{}/{}/{}",
        i.entity_name, i.collection_name, i.container_name
    )
}

/// `delete <ref> --arch <arch>`.
pub async fn delete(g: &Global, a: &cli::DeleteArgs) -> Result<(), CliError> {
    let r = parse_ref(&a.reference)?;
    let image_ref = refs::delete_target(&a.reference, &r)?;
    if a.arch.is_empty() {
        return Err(CliError::usage(
            "--arch is empty",
            "give the architecture of the image to delete",
        ));
    }
    let client = client_for(g, &a.reference, &r).await?;
    let shown = format!("library://{image_ref}");
    client
        .delete_image(&image_ref, &a.arch)
        .await
        .map_err(|e| {
            CliError::client(
                &format!("deleting {shown} ({})", a.arch),
                &e,
                SEE_WHAT_EXISTS,
            )
        })?;
    if g.json {
        output::json(&json!({"deleted": shown, "arch": a.arch}));
    } else if !g.quiet {
        out(&format!("deleted {shown} ({})", a.arch));
    }
    Ok(())
}

/// `tags <container>`.
pub async fn tags(g: &Global, a: &cli::TagsArgs) -> Result<(), CliError> {
    let r = parse_ref(&a.container)?;
    let path = refs::container_target(&a.container, &r)?;
    let client = client_for(g, &a.container, &r).await?;
    let shown = format!("library://{path}");
    let not_found = "check the container's name ('scs-library search' lists what exists)";
    let container = client
        .get_container(&path)
        .await
        .map_err(|e| CliError::client(&format!("finding {shown}"), &e, not_found))?;
    let v1 = client
        .get_tags(&container.id)
        .await
        .map_err(|e| CliError::client(&format!("listing the tags of {shown}"), &e, not_found))?;
    let v2 = if client.api_at_least(API_VERSION_V2_ARCH_TAGS).await {
        Some(client.get_arch_tags(&container.id).await.map_err(|e| {
            CliError::client(
                &format!("listing the tags per architecture of {shown}"),
                &e,
                not_found,
            )
        })?)
    } else {
        None
    };
    if g.json {
        output::json(&json!({
            "container": shown,
            "id": container.id,
            "tags": v1,
            "arch_tags": v2,
        }));
        return Ok(());
    }
    let mut text = String::new();
    if let Some(v2) = &v2 {
        let mut t = Table::new(["TAG", "ARCH", "IMAGE"]);
        let mut rows: Vec<(&String, &String, &String)> = v2
            .iter()
            .flat_map(|(arch, tags)| tags.iter().map(move |(tag, id)| (tag, arch, id)))
            .collect();
        rows.sort();
        for (tag, arch, id) in rows {
            t.row(vec![tag.clone(), arch.clone(), id.clone()]);
        }
        text.push_str(&format!("Tags of {shown} per architecture:\n"));
        if t.is_empty() {
            text.push_str("(none)\n");
        } else {
            text.push_str(&t.render());
        }
        text.push('\n');
    }
    let mut t = Table::new(["TAG", "IMAGE"]);
    for (tag, id) in &v1 {
        t.row(vec![tag.clone(), id.clone()]);
    }
    text.push_str(&format!("Tags of {shown} (any architecture):\n"));
    if t.is_empty() {
        text.push_str("(none)\n");
    } else {
        text.push_str(&t.render());
    }
    out(&text);
    Ok(())
}

/// `image <ref>`.
pub async fn image(g: &Global, a: &cli::ImageArgs) -> Result<(), CliError> {
    let r = parse_ref(&a.reference)?;
    let (path, tag) = refs::image_target(&a.reference, &r)?;
    let client = client_for(g, &a.reference, &r).await?;
    let arch = a
        .arch
        .clone()
        .unwrap_or_else(|| library_client::default_arch().to_string());
    let shown = format!("library://{path}:{tag}");
    let img = client
        .get_image(&arch, &format!("{path}:{tag}"))
        .await
        .map_err(|e| CliError::client(&format!("finding {shown} ({arch})"), &e, SEE_WHAT_EXISTS))?;
    if g.json {
        output::json(&img);
        return Ok(());
    }
    let size = if img.size >= 0 {
        format!("{} ({} bytes)", output::size_i64(img.size), img.size)
    } else {
        "-".into()
    };
    let created = img
        .created_at
        .0
        .and_then(|t| t.format(&time_format()).ok().filter(|_| t.year() > 1))
        .unwrap_or_else(|| "-".into());
    let mut pairs = vec![
        ("Image", image_uri(&img)),
        ("ID", img.id.clone()),
        ("Hash", img.hash.clone()),
        ("Size", size),
        (
            "Architecture",
            img.architecture.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Tags", img.tags.join(", ")),
        ("Uploaded", output::yes_no(Some(img.is_uploaded()))),
        ("Signed", output::yes_no(img.signed)),
        ("Encrypted", output::yes_no(img.encrypted)),
        ("Description", img.description.clone()),
        ("Created", created),
        ("Downloads", img.container_downloads.to_string()),
    ];
    if !img.fingerprints.is_empty() {
        pairs.push(("Fingerprints", img.fingerprints.join(", ")));
    }
    out(&output::fields(&pairs));
    Ok(())
}

fn time_format() -> Vec<time::format_description::BorrowedFormatItem<'static>> {
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC").to_vec()
}

/// `version`.
pub async fn version(g: &Global) -> Result<(), CliError> {
    let client = crate::remotes::client(g, "", None).await?;
    let url = client.base_url().to_string();
    let v = client.get_version().await.map_err(|e| {
        CliError::client(
            &format!("asking {url} for its version"),
            &e,
            "check --url (or LIBRARY_URL)",
        )
    })?;
    let client_version = env!("CARGO_PKG_VERSION");
    if g.json {
        output::json(&json!({
            "client": {"name": "scs-library", "version": client_version},
            "server": {"url": url, "version": v.version, "apiVersion": v.api_version},
        }));
    } else {
        out(&output::fields(&[
            ("Client", format!("scs-library {client_version}")),
            ("Library", url),
            ("Server version", or_dash(&v.version)),
            ("API version", or_dash(&v.api_version)),
        ]));
    }
    Ok(())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// `ref <text>`: no network.
pub fn reference(g: &Global, a: &cli::RefArgs) -> Result<(), CliError> {
    let want = if a.pull {
        refs::Want::Pull
    } else if a.push {
        refs::Want::Push
    } else {
        refs::Want::Any
    };
    let rep = refs::report(&a.text, want);
    if g.json {
        output::json(&rep);
    } else if !g.quiet {
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let mut pairs = vec![("Reference", a.text.clone())];
        if let Some(c) = &rep.canonical {
            pairs.push(("Canonical", c.clone()));
            pairs.push((
                "Host",
                if rep.host.is_empty() {
                    "(the configured library)".into()
                } else {
                    rep.host.clone()
                },
            ));
            pairs.push(("Path", rep.path.clone()));
            pairs.push(("Entity", or_dash(&rep.entity)));
            pairs.push(("Collection", or_dash(&rep.collection)));
            pairs.push(("Container", or_dash(&rep.container)));
            pairs.push((
                "Tags",
                if rep.tags.is_empty() {
                    "(none: latest)".into()
                } else {
                    rep.tags.join(", ")
                },
            ));
            pairs.push(("Pull", yes(rep.pull)));
            pairs.push(("Push", yes(rep.push)));
        }
        pairs.push(("Valid", yes(rep.valid)));
        out(&output::fields(&pairs));
    }
    if rep.valid {
        Ok(())
    } else {
        Err(CliError::usage(
            format!("invalid reference {:?}", a.text),
            rep.error.unwrap_or_default(),
        ))
    }
}

/// `completions <shell>`.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    use clap::CommandFactory;
    let mut cmd = cli::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "scs-library", &mut buf);
    out(&String::from_utf8_lossy(&buf));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_that_appeared_is_a_usage_error() {
        let appeared = library_client::Error::Io {
            path: "x.sif".into(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "now exists"),
        };
        let e = pull_error("pulling x", &appeared);
        assert_eq!(e.code, crate::errors::USAGE);
        assert!(
            e.what.contains("x.sif") && e.what.contains("now exists"),
            "{e}"
        );
        assert!(e.hint.contains("--force"), "{e}");
        let other = library_client::Error::Io {
            path: "x.sif".into(),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(pull_error("pulling x", &other).code, crate::errors::OTHER);
    }
}
