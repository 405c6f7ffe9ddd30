//! Printing: aligned tables, human-readable sizes and rates, JSON, and a
//! stdout that does not panic when the reader goes away.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

/// Write text to stdout; a closed pipe (`| head`) is not an error.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = o.write_all(b"\n");
    }
    let _ = o.flush();
}

/// Print a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => out(&s),
        Err(e) => eprintln!("error: encoding JSON: {e}"),
    }
}

/// `1.5 MiB`, `36.0 KiB`, `512 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Size of an `i64` field (negative means unknown).
pub fn size_i64(bytes: i64) -> String {
    if bytes < 0 {
        "-".into()
    } else {
        size(bytes as u64)
    }
}

/// Bytes per second over `elapsed` (0 when too short to measure).
pub fn bytes_per_second(bytes: u64, elapsed: Duration) -> u64 {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        0
    } else {
        (bytes as f64 / s) as u64
    }
}

/// `12.3 MiB/s`.
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    format!("{}/s", size(bytes_per_second(bytes, elapsed)))
}

/// `0.42 s`.
pub fn seconds(elapsed: Duration) -> String {
    format!("{:.2} s", elapsed.as_secs_f64())
}

/// A table with a header row, columns aligned on the widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row (missing cells are empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, two spaces between columns,
    /// no trailing spaces.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths = vec![0usize; n];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < n {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// Key-value lines, keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (k, v) in pairs {
        text.push_str(format!("{k:<w$}  {v}").trim_end());
        text.push('\n');
    }
    text
}

/// The first 12 hex digits of a `sha256.<hex>` hash, as `sha256.0123456789ab`.
pub fn short_hash(hash: &str) -> String {
    match hash.split_once('.') {
        Some((algo, hex)) if hex.len() > 12 => format!("{algo}.{}", &hex[..12]),
        _ => hash.to_string(),
    }
}

/// `yes`/`no`/`-` for an optional flag.
pub fn yes_no(v: Option<bool>) -> String {
    match v {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(36864), "36.0 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(size_i64(-1), "-");
    }

    #[test]
    fn table_aligns() {
        let mut t = Table::new(["A", "LONGER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        t.row(vec!["y".into()]);
        assert_eq!(t.render(), "A          LONGER\nwide cell  x\ny\n");
    }

    #[test]
    fn hashes() {
        assert_eq!(
            short_hash("sha256.0123456789abcdef0123"),
            "sha256.0123456789ab"
        );
        assert_eq!(short_hash("sif.x"), "sif.x");
    }
}
