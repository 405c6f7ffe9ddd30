//! The OCI redirect, the SIF config, manifests and indexes.

use std::collections::BTreeMap;

use library_model::*;
use serde_json::json;

const CONFIG_DIGEST: &str =
    "sha256:6d8ff0b8fa2e2e5a34b0ba4a3a2fcb0f4bf5d0c1a2b3c4d5e6f708192a3b4c5d";
const IMAGE_DIGEST: &str =
    "sha256:d7d71e2cd0b4ef2ae3c1ee6d4bd5d2cda6bb4b2d58e0a1e1e2cbe26d1e5d5c3f";

#[test]
fn oci_redirect_is_plain_json() {
    let r: OciRedirect = from_json(
        br#"{"token":"t0k","url":"https://registry.example/","name":"library/default/alpine"}"#,
    )
    .unwrap();
    assert_eq!(
        r,
        OciRedirect {
            token: "t0k".into(),
            url: "https://registry.example/".into(),
            name: "library/default/alpine".into(),
        }
    );
    assert_eq!(
        serde_json::to_value(OciRedirect::default()).unwrap(),
        json!({"token": "", "url": "", "name": ""})
    );
}

#[test]
fn sif_config_encodes_in_go_key_order() {
    let config = SifConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: IMAGE_DIGEST.into(),
        description: String::new(),
        signed: true,
        encrypted: false,
    };
    assert_eq!(
        serde_json::to_string(&config).unwrap(),
        format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":"{IMAGE_DIGEST}","signed":true,"encrypted":false}}"#
        )
    );
    let with_description = SifConfig {
        description: "d".into(),
        ..config.clone()
    };
    let v = serde_json::to_value(&with_description).unwrap();
    assert_eq!(v["description"], "d");
    let back: SifConfig = from_json(&serde_json::to_vec(&with_description).unwrap()).unwrap();
    assert_eq!(back, with_description);
}

#[test]
fn manifest_encodes_like_the_reference_push() {
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: None,
        config: Descriptor {
            media_type: MEDIA_TYPE_SIF_CONFIG.into(),
            digest: CONFIG_DIGEST.into(),
            size: 150,
            ..Default::default()
        },
        layers: vec![Descriptor {
            media_type: MEDIA_TYPE_SIF_LAYER.into(),
            digest: IMAGE_DIGEST.into(),
            size: 2_838_528,
            ..Default::default()
        }],
        annotations: None,
    };
    assert_eq!(
        serde_json::to_string(&manifest).unwrap(),
        format!(
            concat!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.sylabs.sif.config.v1+json","#,
                r#""digest":"{}","size":150}},"layers":[{{"mediaType":"application/vnd.sylabs.sif.layer.v1.sif","#,
                r#""digest":"{}","size":2838528}}]}}"#
            ),
            CONFIG_DIGEST, IMAGE_DIGEST
        )
    );
    let with_type = ImageManifest {
        media_type: Some(MEDIA_TYPE_OCI_MANIFEST.into()),
        ..manifest.clone()
    };
    let text = serde_json::to_string(&with_type).unwrap();
    assert!(text.starts_with(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config""#
    ));
    let back: ImageManifest = from_json(text.as_bytes()).unwrap();
    assert_eq!(back, with_type);
}

#[test]
fn index_encodes_with_platform() {
    let index = ImageIndex {
        schema_version: 2,
        media_type: MEDIA_TYPE_OCI_INDEX.into(),
        manifests: vec![Descriptor {
            media_type: MEDIA_TYPE_OCI_MANIFEST.into(),
            digest: CONFIG_DIGEST.into(),
            size: 0,
            annotations: None,
            platform: Some(Platform {
                architecture: "arm64".into(),
                os: "linux".into(),
            }),
        }],
        annotations: None,
    };
    assert_eq!(
        serde_json::to_string(&index).unwrap(),
        format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","#,
                r#""manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                r#""digest":"{}","size":0,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
            ),
            CONFIG_DIGEST
        )
    );
    let no_type = ImageIndex {
        media_type: String::new(),
        ..index.clone()
    };
    assert!(serde_json::to_value(&no_type)
        .unwrap()
        .get("mediaType")
        .is_none());
}

#[test]
fn registry_documents_with_extra_fields_decode() {
    let index: ImageIndex = from_json(
        br#"{
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": "sha256:aa", "size": 528,
             "platform": {"architecture": "amd64", "os": "linux", "os.version": "x", "variant": "v8"},
             "annotations": {"org.opencontainers.image.ref.name": "latest"},
             "urls": ["https://mirror/x"], "artifactType": "a"}
          ],
          "subject": null
        }"#,
    )
    .unwrap();
    let m = &index.manifests[0];
    assert_eq!(m.platform.as_ref().unwrap().architecture, "amd64");
    assert_eq!(
        m.annotations.as_ref().unwrap(),
        &BTreeMap::from([(
            "org.opencontainers.image.ref.name".to_owned(),
            "latest".to_owned()
        )])
    );

    let manifest: ImageManifest =
        from_json(br#"{"schemaVersion":2,"config":null,"layers":null}"#).unwrap();
    assert!(manifest.layers.is_empty());
    assert_eq!(manifest.config, Descriptor::default());

    let err = from_json::<ImageManifest>(br#"{"layers":[{"size":"1"}]}"#).unwrap_err();
    assert_eq!(err.path(), "layers[0].size");
}

#[test]
fn media_types() {
    assert_eq!(
        MEDIA_TYPE_OCI_MANIFEST,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        MEDIA_TYPE_OCI_INDEX,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        MEDIA_TYPE_SIF_CONFIG,
        "application/vnd.sylabs.sif.config.v1+json"
    );
    assert_eq!(
        MEDIA_TYPE_SIF_LAYER,
        "application/vnd.sylabs.sif.layer.v1.sif"
    );
}
