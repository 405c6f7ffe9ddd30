//! The command line: global options and subcommands, as clap parses them.
//!
//! The doc comments of the fields are the `--help` text shown in a
//! terminal, written for that, not as rustdoc markup.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags
)]

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Configuration:
  The library: --url, then LIBRARY_URL, then APPTAINER_LIBRARY, then
  SINGULARITY_LIBRARY, then the host of a library://host/... reference,
  then --remote NAME, then the Active remote of Apptainer's or
  SingularityCE's remote.yaml (found by service discovery), then
  https://library.sylabs.io.
  The token: --token-file, then --token, then LIBRARY_TOKEN, then
  LIBRARY_TOKEN_FILE, else the remote's token, sent only to that remote's
  own library (same scheme, host and port). Prefer LIBRARY_TOKEN or a token file: a
  --token on the command line is visible to other users of the machine.
  The token is never printed or logged.

Exit codes:
  0    success
  1    any other failure (local files, unreadable SIF image, ...)
  2    usage error: bad arguments, invalid reference, destination exists,
       input rejected by the server (400), invalid configuration
  3    not found (image, tag, container, ...)
  4    unauthorized or forbidden: missing or refused token
  5    network or server error (connection, timeout, TLS, 5xx, bad answer)
  6    integrity failure: the bytes do not match their digest
  130  interrupted (Ctrl-C)";

/// `scs-library`: pull, push, search and manage `library://` SIF images.
#[derive(Debug, Parser)]
#[command(
    name = "scs-library",
    version,
    about = "Pull, push, search and manage library:// SIF images of a Container Library",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Base URL of the library [env: LIBRARY_URL] [default: https://library.sylabs.io]
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Use this remote of remote.yaml (Apptainer/SingularityCE) instead of its Active one
    #[arg(long, global = true, value_name = "NAME")]
    pub remote: Option<String>,

    /// Read the access token from this file [env: LIBRARY_TOKEN_FILE]
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,

    /// The access token (prefer LIBRARY_TOKEN or --token-file: command lines are visible to others)
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Trust the CA certificates of this PEM file as well as the system's
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Send requests through this proxy (default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY)
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,

    /// Send a request again up to N times when it failed in a way worth retrying (a dropped connection, a 502, a 503), with growing delays; 0 never retries [env: LIBRARY_RETRIES] [default: 5]
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<u32>,

    /// Give up on a connection that is not made within SECS seconds [env: LIBRARY_CONNECT_TIMEOUT] [default: 10]
    #[arg(long, global = true, value_name = "SECS")]
    pub connect_timeout: Option<String>,

    /// Give up on a transfer that makes no progress for SECS seconds: no byte of an upload accepted, or no byte of a download received. A slow transfer that keeps moving is never cut [env: LIBRARY_IDLE_TIMEOUT] [default: 60]
    #[arg(long, global = true, value_name = "SECS")]
    pub idle_timeout: Option<String>,

    /// Give up waiting for an answer SECS seconds after the request was sent whole (the time a server takes to respond, not the transfer) [env: LIBRARY_TIMEOUT] [default: 60]
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<String>,

    /// Print machine-readable JSON on stdout instead of tables
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress bars and no informational messages
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log what the client does on stderr (-v debug, -vv trace; RUST_LOG overrides)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image into a file, checked against its hash
    #[command(after_help = "Examples:
  scs-library pull alice/tools/samtools:1.17
  scs-library pull library://alice/tools/samtools samtools.sif --arch arm64
  scs-library pull alice/tools/samtools:1.17 --concurrency 8 --part-size 16M --resume")]
    Pull(PullArgs),

    /// Upload a SIF image and tag it
    #[command(after_help = "Examples:
  scs-library push samtools.sif alice/tools/samtools:1.17,latest
  scs-library push tool.sif library://alice/tools/tool --arch arm64 --description 'my tool'")]
    Push(PushArgs),

    /// Search entities, collections, containers and images
    #[command(after_help = "Examples:
  scs-library search samtools
  scs-library search samtools --arch arm64 --signed")]
    Search(SearchArgs),

    /// Delete the image a tag points at, for one architecture
    #[command(after_help = "Example:
  scs-library delete alice/tools/samtools:1.17 --arch amd64")]
    Delete(DeleteArgs),

    /// List the tags of a container (per architecture when the library supports it)
    #[command(after_help = "Example:
  scs-library tags alice/tools/samtools")]
    Tags(TagsArgs),

    /// Show the record of an image
    #[command(after_help = "Examples:
  scs-library image alice/tools/samtools:1.17
  scs-library image alice/tools/samtools:sha256.<hex> --arch arm64 --json")]
    Image(ImageArgs),

    /// Show the versions of the library server and of this client
    Version,

    /// Parse and check a reference, without any network (exit 0 when valid, 2 when not)
    #[command(after_help = "Examples:
  scs-library ref library://alice/tools/samtools:1.17
  scs-library ref --push alice/tools/samtools:1.17,latest")]
    Ref(RefArgs),

    /// Show, clean or locate the image cache (Apptainer's library cache)
    #[command(after_help = "Examples:
  scs-library cache list
  scs-library cache clean --older-than 30d
  scs-library cache dir")]
    Cache(crate::cache_cmd::CacheArgs),
    /// Show the remotes of Apptainer/SingularityCE (remote.yaml) and check one
    #[command(after_help = "Examples:
  scs-library remote list
  scs-library remote status
  scs-library remote status SylabsCloud --json")]
    Remote {
        #[command(subcommand)]
        command: crate::remotes::RemoteCommand,
    },

    /// Print a shell completion script
    #[command(after_help = "Examples:
  scs-library completions bash > /etc/bash_completion.d/scs-library
  scs-library completions zsh > ~/.zfunc/_scs-library
  scs-library completions fish > ~/.config/fish/completions/scs-library.fish")]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// `pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: [library://]entity/collection/container[:tag] (tag default latest)
    pub reference: String,

    /// Destination file or directory [default: ./<container>_<tag>.sif]
    pub dest: Option<PathBuf>,

    /// Architecture to pull [env: APPTAINER_PULL_ARCH, SINGULARITY_PULL_ARCH] [default: this machine's]
    #[arg(long)]
    pub arch: Option<String>,

    /// Parts downloaded at once: auto (more while the download gets faster, fewer when the server refuses), or a number from 1 to 256 [env: APPTAINER_DOWNLOAD_CONCURRENCY, SINGULARITY_DOWNLOAD_CONCURRENCY] [default: auto]
    #[arg(long, value_parser = parse_streams)]
    pub concurrency: Option<Streams>,

    /// The most parts at once with --concurrency auto
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_concurrency: u16,

    /// Size of each part: bytes or with a K, M or G suffix (binary units) [env: APPTAINER_DOWNLOAD_PART_SIZE, SINGULARITY_DOWNLOAD_PART_SIZE] [default: a 64th of the image, from 5M to 64M]
    #[arg(long, value_parser = parse_size)]
    pub part_size: Option<u64>,

    /// Keep the partial file of an interrupted pull and continue from it next time
    #[arg(long)]
    pub resume: bool,

    /// Replace the destination if it exists (a destination that already holds the image needs no --force)
    #[arg(long)]
    pub force: bool,

    /// Download straight to the destination, without the image cache [env: APPTAINER_DISABLE_CACHE]
    #[arg(long)]
    pub no_cache: bool,
}

/// `push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The SIF image file
    pub file: PathBuf,

    /// Where to: [library://]entity/collection/container[:tag[,tag...]] (tag default latest)
    pub reference: String,

    /// Architecture of the image [default: read from the SIF header]
    #[arg(long)]
    pub arch: Option<String>,

    /// Description of the image
    #[arg(long, default_value = "")]
    pub description: String,

    /// Parts uploaded at once in multipart uploads: auto (more while the upload gets faster, fewer when the server refuses), or a number from 1 to 256
    #[arg(long, default_value = "auto", value_parser = parse_streams)]
    pub concurrency: Streams,

    /// The most parts at once with --concurrency auto
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_concurrency: u16,
}

/// `search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Text to look for (at least 3 characters)
    pub text: String,

    /// Only images of this architecture (comma-separated for several)
    #[arg(long)]
    pub arch: Option<String>,

    /// Only signed images (--signed=false: only unsigned ones)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub signed: Option<bool>,
}

/// `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The image: [library://]entity/collection/container:tag
    pub reference: String,

    /// Architecture of the image to delete
    #[arg(long, required = true)]
    pub arch: String,
}

/// `tags`.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// The container: [library://]entity/collection/container
    pub container: String,
}

/// `image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The image: [library://]entity/collection/container[:tag] (tag default latest)
    pub reference: String,

    /// Architecture [default: this machine's]
    #[arg(long)]
    pub arch: Option<String>,
}

/// `ref`.
#[derive(Debug, Args)]
pub struct RefArgs {
    /// The reference to check
    pub text: String,

    /// Require it to be valid to pull (at most one tag, 1 to 3 path parts)
    #[arg(long, conflicts_with = "push")]
    pub pull: bool,

    /// Require it to be valid to push (entity/collection/container, any tags)
    #[arg(long)]
    pub push: bool,
}

/// How many parts at once, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// Found while the transfer runs, up to `--max-concurrency`.
    Auto,
    /// Exactly this many.
    Fixed(u16),
}

impl Streams {
    /// The setting for the transfer, with `max` the most streams of `auto`.
    pub fn with_max(self, max: u16) -> library_client::Concurrency {
        match self {
            Streams::Auto => library_client::Concurrency::Auto {
                max: usize::from(max.max(1)),
            },
            Streams::Fixed(n) => library_client::Concurrency::Fixed(usize::from(n)),
        }
    }
}

/// Parse `auto` or a number of parts from 1 to 256.
pub fn parse_streams(s: &str) -> Result<Streams, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("auto") {
        return Ok(Streams::Auto);
    }
    match t.parse::<u16>() {
        Ok(n) if (1..=256).contains(&n) => Ok(Streams::Fixed(n)),
        _ => Err(format!(
            "{s:?} is neither auto nor a number of parts from 1 to 256"
        )),
    }
}

/// Parse a size such as `5M`, `64K`, `1G`, `1048576`, `5MiB`: binary units.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a size (examples: 5M, 64K, 1G, 1048576)"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is too large a size"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use K, M, G or T, or plain bytes)"
            ))
        }
    };
    let v = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large a size"))?;
    if v == 0 {
        return Err("the size must be at least 1 byte".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5M"), Ok(5 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("5MiB"), Ok(5 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("-5M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
