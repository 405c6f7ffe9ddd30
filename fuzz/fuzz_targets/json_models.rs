//! Decoding any bytes into every wire model (and into the response
//! envelope around each) never panics, and whatever decodes survives a
//! round trip: encoding it and decoding the encoding gives an equal value.
//! The first byte of an input chooses the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use library_model as m;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `data` as `T` both ways (Go's null rules and plain serde); for
/// a value that decodes, checks that it encodes and decodes back equal.
fn check<T>(data: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let _ = serde_json::from_slice::<T>(data);
    let Ok(value) = m::from_json::<T>(data) else {
        return;
    };
    let text = match serde_json::to_vec(&value) {
        Ok(t) => t,
        // Only a time Go itself would refuse to write may fail to encode,
        // and a decoded time never is one.
        Err(e) => panic!("decoded value does not encode: {e}: {value:?}"),
    };
    let again: T = m::from_json(&text).unwrap_or_else(|e| {
        panic!(
            "encoding does not decode: {e}: {}",
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(again, value, "{}", String::from_utf8_lossy(&text));
    // The encoding is a fixed point: encoding the decoded value again gives
    // the same bytes.
    assert_eq!(serde_json::to_vec(&again).unwrap(), text);
}

/// One check per model type and envelope; the first byte of the input
/// chooses the type, the rest is the JSON text.
const CHECKS: &[fn(&[u8])] = &[
    check::<m::Entity>,
    check::<m::Collection>,
    check::<m::Container>,
    check::<m::Image>,
    check::<m::Blob>,
    check::<m::SearchResults>,
    check::<m::TagMap>,
    check::<m::ArchTagMap>,
    check::<m::ImageTag>,
    check::<m::ArchImageTag>,
    check::<m::VersionInfo>,
    check::<m::QuotaResponse>,
    check::<m::UploadImageRequest>,
    check::<m::UploadImage>,
    check::<m::UploadImageCompleteRequest>,
    check::<m::UploadImageComplete>,
    check::<m::MultipartUploadStartRequest>,
    check::<m::MultipartUpload>,
    check::<m::UploadImagePartRequest>,
    check::<m::UploadImagePart>,
    check::<m::CompletedPart>,
    check::<m::CompleteMultipartUploadRequest>,
    check::<m::AbortMultipartUploadRequest>,
    check::<m::OciRedirect>,
    check::<m::SifConfig>,
    check::<m::Platform>,
    check::<m::Descriptor>,
    check::<m::ImageManifest>,
    check::<m::ImageIndex>,
    check::<m::EntityResponse>,
    check::<m::CollectionResponse>,
    check::<m::ContainerResponse>,
    check::<m::ImageResponse>,
    check::<m::SearchResponse>,
    check::<m::TagsResponse>,
    check::<m::ArchTagsResponse>,
    check::<m::VersionResponse>,
    check::<m::UploadImageResponse>,
    check::<m::UploadImageCompleteResponse>,
    check::<m::MultipartUploadStartResponse>,
    check::<m::UploadImagePartResponse>,
    check::<m::CompleteMultipartUploadResponse>,
    check::<m::Response<m::Blob>>,
    check::<m::Response<serde_json::Value>>,
    check::<m::JsonError>,
    check::<m::PageDetails>,
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    CHECKS[which as usize % CHECKS.len()](json);
    // The error-body reader of the transport sees the same bytes.
    let _ = library_transport::error_message(json);
});
