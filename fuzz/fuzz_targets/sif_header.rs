//! The SIF header reader never panics, and what it accepts is consistent:
//! the OCI facts agree with the header's own fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use library_client::sif::{SifHeader, HEADER_READ_SIZE};

fuzz_target!(|data: &[u8]| {
    let parsed = SifHeader::parse(data);
    // Bytes past the first 32 KiB never change the answer.
    if data.len() > HEADER_READ_SIZE {
        assert_eq!(parsed, SifHeader::parse(&data[..HEADER_READ_SIZE]));
    }
    let Ok(h) = parsed else { return };
    assert!(data.len() >= 128);
    assert!(h.primary_partitions <= h.objects);
    assert_eq!(h.encrypted.is_some(), h.primary_partitions == 1);
    assert_eq!(h.uuid.len(), 36);
    if let Ok((arch, signed, encrypted)) = h.oci_facts() {
        assert_eq!(arch, h.arch);
        assert_eq!(signed, h.signed);
        assert_eq!(Some(encrypted), h.encrypted);
    }
});
