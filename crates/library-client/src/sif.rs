//! Reading what a client needs from the header of a SIF image.
//!
//! A SIF (Singularity Image Format) file starts with a 128-byte global
//! header and a table of fixed-size object descriptors. Before pushing an
//! image to an OCI registry the client needs three facts from them: the
//! primary architecture, whether the image holds a signature, and whether
//! its primary system partition is encrypted. All three come from the first
//! 32 KiB of the file ([`HEADER_READ_SIZE`]).
//!
//! [`SifHeader::parse`] works on bytes only (no I/O), so it can be fed
//! anything; [`read_sif_header`] reads the start of a file and parses it.
//!
//! ```
//! use library_client::sif::SifHeader;
//!
//! // Not a SIF image: the error says why.
//! let err = SifHeader::parse(b"#!/bin/sh\necho hello\n").unwrap_err();
//! assert!(err.to_string().contains("too short"));
//! ```

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// How many bytes of an image are read for its header (the reference
/// client reads exactly this much; descriptors past it are not seen).
pub const HEADER_READ_SIZE: usize = 32768;

/// Size of the global header.
const GLOBAL_HEADER_SIZE: usize = 128;
/// Size of one descriptor slot.
const DESCRIPTOR_SIZE: usize = 585;
/// The magic bytes at offset 32.
const MAGIC: &[u8; 10] = b"SIF_MAGIC\0";
/// The only spec version understood, at offset 42.
const VERSION: &[u8; 3] = b"01\0";

/// Descriptor data type of a partition (file system).
const DATA_PARTITION: i32 = 0x4004;
/// Descriptor data type of a signature.
const DATA_SIGNATURE: i32 = 0x4005;
/// Partition type of the primary system partition.
const PART_PRIMARY_SYSTEM: i32 = 2;
/// File system type of an encrypted squashfs.
const FS_ENCRYPTED_SQUASHFS: i32 = 5;

/// Architecture codes of the header (3 bytes, matched exactly) and their
/// Go names.
const ARCHES: [(&[u8; 3], &str); 12] = [
    (b"01\0", "386"),
    (b"02\0", "amd64"),
    (b"03\0", "arm"),
    (b"04\0", "arm64"),
    (b"05\0", "ppc64"),
    (b"06\0", "ppc64le"),
    (b"07\0", "mips"),
    (b"08\0", "mipsle"),
    (b"09\0", "mips64"),
    (b"10\0", "mips64le"),
    (b"11\0", "s390x"),
    (b"12\0", "riscv64"),
];

/// The architecture name of a header arch code; `unknown` for `00` and
/// for anything not in the table.
fn arch_name(code: &[u8]) -> &'static str {
    ARCHES
        .iter()
        .find(|(c, _)| c.as_slice() == code)
        .map_or("unknown", |(_, name)| name)
}

/// What an image's SIF header says.
///
/// ```
/// # fn demo() -> library_client::Result<()> {
/// let h = library_client::sif::read_sif_header("alpine.sif".as_ref())?;
/// println!("{} signed={} encrypted={:?}", h.arch, h.signed, h.encrypted);
/// match h.oci_facts() {
///     Ok((arch, signed, encrypted)) => println!("push as {arch}, {signed}, {encrypted}"),
///     Err(e) => println!("cannot be pushed to an OCI registry: {e}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SifHeader {
    /// The primary architecture, as a Go `GOARCH` name (`amd64`, `arm64`,
    /// ...), from the header's arch code; `unknown` when the code is `00`
    /// or not one the format defines.
    pub arch: String,
    /// Whether at least one object in use is a signature.
    pub signed: bool,
    /// Whether the primary system partition is an encrypted squashfs;
    /// `None` when there is not exactly one primary system partition.
    pub encrypted: Option<bool>,
    /// The image's UUID, printed as `8-4-4-4-12` lower-case hex.
    pub uuid: String,
    /// The number of descriptor slots in use.
    pub objects: usize,
    /// The number of primary system partitions (1 in a well-formed image).
    pub primary_partitions: usize,
    /// The header's count of free slots equals its count of all slots: the
    /// format's own test for "no objects".
    header_says_empty: bool,
}

/// Why the start of a file is not a SIF header that can be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SifError {
    /// Fewer bytes than the 128-byte global header.
    #[error("not a SIF image: too short ({len} bytes, the header needs 128)")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// The magic `SIF_MAGIC` is not at offset 32.
    #[error("not a SIF image: invalid SIF magic")]
    BadMagic,
    /// The spec version is not `01`.
    #[error("incompatible SIF version {found:?} (only \"01\" is supported)")]
    BadVersion {
        /// The version field as found (NULs and non-text bytes escaped).
        found: String,
    },
    /// The descriptor table lies (partly) outside the bytes given, or its
    /// geometry is impossible (negative, too large, overflowing).
    #[error("SIF descriptors out of range: {total} slots at offset {offset} (area of {size} bytes) do not fit in the {available} bytes read")]
    DescriptorsOutOfRange {
        /// Header: offset of the descriptor table.
        offset: i64,
        /// Header: number of descriptor slots.
        total: i64,
        /// Header: size of the descriptor area.
        size: i64,
        /// Bytes available (at most [`HEADER_READ_SIZE`]).
        available: usize,
    },
    /// The image holds no objects at all.
    #[error("no objects in image")]
    NoObjects,
    /// No partition is marked as the primary system partition.
    #[error("no primary system partition in image: object not found")]
    NoPrimaryPartition,
    /// More than one partition is marked as the primary system partition.
    #[error("{count} primary system partitions in image: multiple objects found")]
    MultiplePrimaryPartitions {
        /// How many there are.
        count: usize,
    },
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    i32::from_le_bytes(x)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(x)
}

struct Uuid<'a>(&'a [u8]);

impl fmt::Display for Uuid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl SifHeader {
    /// Parse the start of a SIF image: give it the first 32768 bytes
    /// ([`HEADER_READ_SIZE`]), or the whole file when it is shorter. Bytes
    /// beyond 32768 are ignored, as the reference client never reads them.
    ///
    /// Fails when the bytes are shorter than the global header, the magic
    /// or the version is wrong, or the descriptor table does not fit in
    /// the bytes. A header without a single primary system partition
    /// parses (with `encrypted: None`); [`oci_facts`](Self::oci_facts)
    /// then fails. Never panics, whatever the input.
    ///
    /// ```
    /// use library_client::sif::{SifError, SifHeader};
    /// let mut bytes = vec![0u8; 100];
    /// bytes[32..42].copy_from_slice(b"SIF_MAGIC\0");
    /// assert_eq!(SifHeader::parse(&bytes), Err(SifError::Truncated { len: 100 }));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<SifHeader, SifError> {
        let b = &bytes[..bytes.len().min(HEADER_READ_SIZE)];
        if b.len() < GLOBAL_HEADER_SIZE {
            return Err(SifError::Truncated { len: b.len() });
        }
        if &b[32..42] != MAGIC {
            return Err(SifError::BadMagic);
        }
        if &b[42..45] != VERSION {
            return Err(SifError::BadVersion {
                found: b[42..45].escape_ascii().to_string(),
            });
        }
        let arch = arch_name(&b[45..48]);
        let uuid = Uuid(&b[48..64]).to_string();
        let free = i64_at(b, 80);
        let total = i64_at(b, 88);
        let offset = i64_at(b, 96);
        let size = i64_at(b, 104);

        let out_of_range = || SifError::DescriptorsOutOfRange {
            offset,
            total,
            size,
            available: b.len(),
        };
        // The table is read as `total` slots from `offset`, within an area
        // of `size` bytes, and must lie inside the bytes given.
        let total_n = usize::try_from(total).map_err(|_| out_of_range())?;
        let mut start = 0;
        if total_n > 0 {
            start = usize::try_from(offset).map_err(|_| out_of_range())?;
            let need = total_n
                .checked_mul(DESCRIPTOR_SIZE)
                .ok_or_else(out_of_range)?;
            let area = usize::try_from(size).map_err(|_| out_of_range())?;
            let end = start.checked_add(need).ok_or_else(out_of_range)?;
            if need > area || end > b.len() {
                return Err(out_of_range());
            }
        }

        let mut objects = 0;
        let mut signed = false;
        let mut primaries = Vec::new();
        for i in 0..total_n {
            let d = &b[start + i * DESCRIPTOR_SIZE..start + (i + 1) * DESCRIPTOR_SIZE];
            if d[4] == 0 {
                continue;
            }
            objects += 1;
            match i32_at(d, 0) {
                DATA_SIGNATURE => signed = true,
                DATA_PARTITION if i32_at(d, 205) == PART_PRIMARY_SYSTEM => {
                    primaries.push(i32_at(d, 201) == FS_ENCRYPTED_SQUASHFS)
                }
                _ => {}
            }
        }
        Ok(SifHeader {
            arch: arch.to_string(),
            signed,
            encrypted: match primaries.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
            uuid,
            objects,
            primary_partitions: primaries.len(),
            header_says_empty: free == total,
        })
    }

    /// The facts an OCI push records in the image config: the primary
    /// architecture, signed, encrypted.
    ///
    /// Fails as the reference client does: with [`SifError::NoObjects`]
    /// when the image holds no objects, [`SifError::NoPrimaryPartition`]
    /// when no partition is the primary system partition, and
    /// [`SifError::MultiplePrimaryPartitions`] when several are.
    pub fn oci_facts(&self) -> Result<(String, bool, bool), SifError> {
        if self.header_says_empty {
            return Err(SifError::NoObjects);
        }
        match (self.primary_partitions, self.encrypted) {
            (1, Some(encrypted)) => Ok((self.arch.clone(), self.signed, encrypted)),
            (0, _) => Err(SifError::NoPrimaryPartition),
            (count, _) => Err(SifError::MultiplePrimaryPartitions { count }),
        }
    }
}

/// Read the SIF header of the image file at `path`: at most the first
/// [`HEADER_READ_SIZE`] bytes are read, then parsed with
/// [`SifHeader::parse`].
///
/// Fails with [`Error::Io`] when the file cannot be read and with
/// [`Error::Sif`] when its start is not a usable SIF header.
pub fn read_sif_header(path: &Path) -> Result<SifHeader> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::with_capacity(HEADER_READ_SIZE);
    file.take(HEADER_READ_SIZE as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    SifHeader::parse(&buf).map_err(|source| Error::Sif {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal image: header plus `slots` descriptor slots right after it.
    fn image(slots: &[(i32, bool, i32, i32)]) -> Vec<u8> {
        let total = slots.len().max(1);
        let mut b = vec![0u8; GLOBAL_HEADER_SIZE + total * DESCRIPTOR_SIZE];
        b[32..42].copy_from_slice(MAGIC);
        b[42..45].copy_from_slice(VERSION);
        b[45..48].copy_from_slice(b"04\0");
        let used = slots.iter().filter(|s| s.1).count() as i64;
        b[80..88].copy_from_slice(&(total as i64 - used).to_le_bytes());
        b[88..96].copy_from_slice(&(total as i64).to_le_bytes());
        b[96..104].copy_from_slice(&(GLOBAL_HEADER_SIZE as i64).to_le_bytes());
        b[104..112].copy_from_slice(&((total * DESCRIPTOR_SIZE) as i64).to_le_bytes());
        for (i, (dt, used, fs, part)) in slots.iter().enumerate() {
            let d = GLOBAL_HEADER_SIZE + i * DESCRIPTOR_SIZE;
            b[d..d + 4].copy_from_slice(&dt.to_le_bytes());
            b[d + 4] = u8::from(*used);
            b[d + 201..d + 205].copy_from_slice(&fs.to_le_bytes());
            b[d + 205..d + 209].copy_from_slice(&part.to_le_bytes());
        }
        b
    }

    #[test]
    fn facts_of_a_small_image() {
        let h = SifHeader::parse(&image(&[
            (DATA_PARTITION, true, 5, 2),
            (DATA_SIGNATURE, true, 0, 0),
        ]))
        .unwrap();
        assert_eq!(h.oci_facts(), Ok(("arm64".into(), true, true)));
        assert_eq!(h.objects, 2);
    }

    #[test]
    fn unused_slots_do_not_count() {
        let h = SifHeader::parse(&image(&[
            (DATA_PARTITION, true, 1, 2),
            (DATA_SIGNATURE, false, 0, 0),
            (DATA_PARTITION, false, 5, 2),
        ]))
        .unwrap();
        assert_eq!(h.oci_facts(), Ok(("arm64".into(), false, false)));
    }

    #[test]
    fn primary_partition_rules() {
        let two = SifHeader::parse(&image(&[
            (DATA_PARTITION, true, 1, 2),
            (DATA_PARTITION, true, 1, 2),
        ]))
        .unwrap();
        assert_eq!(two.encrypted, None);
        assert_eq!(
            two.oci_facts(),
            Err(SifError::MultiplePrimaryPartitions { count: 2 })
        );
        let none = SifHeader::parse(&image(&[(DATA_PARTITION, true, 1, 1)])).unwrap();
        assert_eq!(none.oci_facts(), Err(SifError::NoPrimaryPartition));
        let empty = SifHeader::parse(&image(&[(DATA_PARTITION, false, 1, 2)])).unwrap();
        assert_eq!(empty.oci_facts(), Err(SifError::NoObjects));
    }

    #[test]
    fn geometry_is_checked() {
        let mut b = image(&[(DATA_PARTITION, true, 1, 2)]);
        b[88..96].copy_from_slice(&(-1i64).to_le_bytes());
        assert!(matches!(
            SifHeader::parse(&b),
            Err(SifError::DescriptorsOutOfRange { .. })
        ));
        let mut b = image(&[(DATA_PARTITION, true, 1, 2)]);
        b[96..104].copy_from_slice(&i64::MAX.to_le_bytes());
        assert!(matches!(
            SifHeader::parse(&b),
            Err(SifError::DescriptorsOutOfRange { .. })
        ));
        // An area smaller than the slots it should hold.
        let mut b = image(&[(DATA_PARTITION, true, 1, 2)]);
        b[104..112].copy_from_slice(&100i64.to_le_bytes());
        assert!(matches!(
            SifHeader::parse(&b),
            Err(SifError::DescriptorsOutOfRange { .. })
        ));
        // No slots at all parses; the facts then fail.
        let mut b = image(&[]);
        b[80..88].copy_from_slice(&0i64.to_le_bytes());
        b[88..96].copy_from_slice(&0i64.to_le_bytes());
        let h = SifHeader::parse(&b).unwrap();
        assert_eq!(h.oci_facts(), Err(SifError::NoObjects));
    }

    #[test]
    fn version_and_magic() {
        let mut b = image(&[(DATA_PARTITION, true, 1, 2)]);
        b[43] = b'2';
        assert_eq!(
            SifHeader::parse(&b),
            Err(SifError::BadVersion {
                found: "02\\x00".into()
            })
        );
        b[32] = b'X';
        assert_eq!(SifHeader::parse(&b), Err(SifError::BadMagic));
    }

    #[test]
    fn arch_codes_match_all_three_bytes() {
        assert_eq!(arch_name(b"02\0"), "amd64");
        assert_eq!(arch_name(b"00\0"), "unknown");
        assert_eq!(arch_name(b"amd"), "unknown");
        assert_eq!(arch_name(b"021"), "unknown");
        assert_eq!(arch_name(b"12\0"), "riscv64");
    }
}
