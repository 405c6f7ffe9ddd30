//! URIs, tag lists, IDs, deletion, model names and error text.

use library_model::*;

#[test]
fn library_uris() {
    let e = Entity {
        name: "sylabs".into(),
        ..Default::default()
    };
    assert_eq!(e.library_uri(), "library://sylabs");

    let c = Collection {
        name: "tests".into(),
        entity_name: "sylabs".into(),
        ..Default::default()
    };
    assert_eq!(c.library_uri(), "library://sylabs/tests");

    let k = Container {
        name: "alpine".into(),
        entity_name: "sylabs".into(),
        collection_name: "tests".into(),
        ..Default::default()
    };
    assert_eq!(k.library_uri(), "library://sylabs/tests/alpine");

    assert_eq!(Entity::default().library_uri(), "library://");
    assert_eq!(Collection::default().library_uri(), "library:///");
    assert_eq!(Container::default().library_uri(), "library:////");
}

#[test]
fn tag_list_is_sorted_and_space_separated() {
    let tags: TagMap = [
        ("latest", "i1"),
        ("3.18", "i2"),
        ("Beta", "i3"),
        ("alpha", "i4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let c = Container {
        image_tags: Some(tags),
        // Architecture tags do not take part.
        arch_tags: Some([("amd64".to_owned(), TagMap::from([("x".into(), "y".into())]))].into()),
        ..Default::default()
    };
    assert_eq!(c.tag_list(), "3.18 Beta alpha latest");
    assert_eq!(Container::default().tag_list(), "");
    let empty = Container {
        image_tags: Some(TagMap::new()),
        ..Default::default()
    };
    assert_eq!(empty.tag_list(), "");
}

#[test]
fn ids_and_deletion() {
    let e = Entity {
        id: "e".into(),
        deleted: true,
        ..Default::default()
    };
    assert_eq!((e.id(), e.is_deleted()), ("e", true));
    let c = Collection {
        id: "c".into(),
        ..Default::default()
    };
    assert_eq!((c.id(), c.is_deleted()), ("c", false));
    let k = Container {
        id: "k".into(),
        ..Default::default()
    };
    assert_eq!(k.id(), "k");
    let i = Image {
        id: "i".into(),
        deleted: true,
        ..Default::default()
    };
    assert_eq!((i.id(), i.is_deleted()), ("i", true));
    let b = Blob {
        id: "b".into(),
        ..Default::default()
    };
    assert_eq!((b.id(), b.is_deleted()), ("b", false));
}

#[test]
fn image_upload_state() {
    assert!(!Image::default().is_uploaded());
    assert!(Image {
        uploaded: true,
        ..Default::default()
    }
    .is_uploaded());
    assert!(Image {
        upload_state: Some("completed".into()),
        ..Default::default()
    }
    .is_uploaded());
    assert!(!Image {
        upload_state: Some("initialized".into()),
        ..Default::default()
    }
    .is_uploaded());
}

#[test]
fn model_names() {
    assert_eq!(
        LIBRARY_MODELS,
        ["Entity", "Collection", "Container", "Image", "Blob"]
    );
}

#[test]
fn json_error_display() {
    assert_eq!(
        JsonError::new(404, "entity not found").to_string(),
        "entity not found (404 Not Found)"
    );
    assert_eq!(
        JsonError::new(500, "boom").to_string(),
        "boom (500 Internal Server Error)"
    );
    assert_eq!(JsonError::new(401, "").to_string(), "401 Unauthorized");
    assert_eq!(
        JsonError::new(416, "x").to_string(),
        "x (416 Requested Range Not Satisfiable)"
    );
    // Go prints an empty reason for a code it does not know.
    assert_eq!(JsonError::new(599, "odd").to_string(), "odd (599 )");
    assert_eq!(JsonError::default().to_string(), "0 ");
    let err: Box<dyn std::error::Error> = Box::new(JsonError::new(412, "exists"));
    assert_eq!(err.to_string(), "exists (412 Precondition Failed)");
}

#[test]
fn status_texts() {
    assert_eq!(status_text(200), "OK");
    assert_eq!(status_text(303), "See Other");
    assert_eq!(status_text(418), "I'm a teapot");
    assert_eq!(status_text(413), "Request Entity Too Large");
    assert_eq!(status_text(0), "");
    assert_eq!(status_text(-1), "");
}
