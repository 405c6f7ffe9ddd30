//! The variables of Apptainer and SingularityCE that the tool honours:
//! `APPTAINER_<KEY>` first, then `SINGULARITY_<KEY>`. A value that cannot
//! be used is a usage error naming the variable, never a silent default.

use crate::cli::{parse_size, parse_streams, Streams};
use crate::errors::CliError;

/// The first non-empty of `APPTAINER_<key>`, `SINGULARITY_<key>`: the
/// variable's name and its trimmed value.
pub fn legacy(key: &str) -> Option<(String, String)> {
    ["APPTAINER_", "SINGULARITY_"].iter().find_map(|p| {
        let name = format!("{p}{key}");
        std::env::var(&name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (name, v))
    })
}

/// Go's `strconv.ParseBool`, as both tools parse their boolean variables.
fn parse_bool(name: &str, v: &str) -> Result<bool, CliError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(CliError::usage(
            format!("{name}={v:?} is not a boolean"),
            format!("set {name} to true or false (or unset it)"),
        )),
    }
}

/// `*_NOHTTPS` / `*_NO_HTTPS`: plain http for `library://host/...` refs.
pub fn no_https() -> Result<bool, CliError> {
    for name in [
        "APPTAINER_NOHTTPS",
        "APPTAINER_NO_HTTPS",
        "SINGULARITY_NOHTTPS",
        "SINGULARITY_NO_HTTPS",
    ] {
        if let Ok(v) = std::env::var(name) {
            let v = v.trim();
            if !v.is_empty() {
                return parse_bool(name, v);
            }
        }
    }
    Ok(false)
}

/// Parts at once: the flag, then `*_DOWNLOAD_CONCURRENCY` (a number, or
/// `auto`), then automatic.
pub fn download_concurrency(flag: Option<Streams>) -> Result<Streams, CliError> {
    if let Some(n) = flag {
        return Ok(n);
    }
    match legacy("DOWNLOAD_CONCURRENCY") {
        None => Ok(Streams::Auto),
        Some((name, v)) => parse_streams(&v).map_err(|_| {
            CliError::usage(
                format!("{name}={v:?} is neither auto nor a number of parts between 1 and 256"),
                format!("set {name} to auto or a whole number such as 3 (or unset it)"),
            )
        }),
    }
}

/// Part size: the flag, then `*_DOWNLOAD_PART_SIZE` (bytes, or with a
/// K/M/G suffix), then `None` (chosen from the image's size).
pub fn download_part_size(flag: Option<u64>) -> Result<Option<u64>, CliError> {
    if let Some(n) = flag {
        return Ok(Some(n));
    }
    match legacy("DOWNLOAD_PART_SIZE") {
        None => Ok(None),
        Some((name, v)) => parse_size(&v).map(Some).map_err(|e| {
            CliError::usage(
                format!("{name}={v:?}: {e}"),
                format!("set {name} to a size in bytes such as 5242880 (or unset it)"),
            )
        }),
    }
}

/// The architecture: the flag, then `*_PULL_ARCH`, else `None`.
pub fn pull_arch(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| legacy("PULL_ARCH").map(|(_, v)| v))
}
