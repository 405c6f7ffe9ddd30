//! Decoding speed of a search response holding 1,000 images.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use library_model::{from_json, GoTime, Image, Response, SearchResponse, SearchResults};

fn search_response_json(images: usize) -> Vec<u8> {
    let created = GoTime::parse("2023-12-29T10:11:12.123456789Z").expect("valid time");
    let updated = GoTime::parse("2024-01-02T03:04:05+01:00").expect("valid time");
    let images = (0..images)
        .map(|i| Image {
            deleted: false,
            created_by: format!("user{}", i % 17),
            created_at: created,
            updated_by: "admin".to_owned(),
            updated_at: updated,
            id: format!("{:024x}", 0x5cd2_e2fe_u64 * (i as u64 + 1)),
            hash: format!("sha256.{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
            description: format!("image number {i} of the benchmark"),
            container: format!("{:024x}", i / 4),
            blob: format!("{:024x}", i + 1_000_000),
            size: 2_838_528 + i as i64,
            uploaded: true,
            signed: Some(i % 2 == 0),
            architecture: Some(if i % 3 == 0 { "arm64" } else { "amd64" }.to_owned()),
            fingerprints: vec!["8883491F4268F173C6E5DC49EDECE4F3F38D871E".to_owned()],
            encrypted: Some(false),
            entity: "5cd2e2fe5a9e4f3b1c2d3e4f".to_owned(),
            entity_name: "sylabs".to_owned(),
            collection: "5cd2e2fe5a9e4f3b1c2d3e50".to_owned(),
            collection_name: "tests".to_owned(),
            container_name: format!("container{}", i / 4),
            tags: vec!["latest".to_owned(), format!("1.{i}")],
            container_description: "a container used to measure decoding".to_owned(),
            container_stars: 3,
            container_downloads: 42,
            ..Image::default()
        })
        .collect();
    let response = Response::new(SearchResults {
        images: Some(images),
        ..SearchResults::default()
    });
    serde_json::to_vec(&response).expect("encodes")
}

fn decode(c: &mut Criterion) {
    let body = search_response_json(1_000);
    eprintln!("search response of 1,000 images: {} bytes", body.len());

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("search_response_1000_images/from_json", |b| {
        b.iter(|| {
            let r: SearchResponse = from_json(black_box(&body)).expect("decodes");
            black_box(r)
        })
    });
    group.bench_function("search_response_1000_images/serde_json", |b| {
        b.iter(|| {
            let r: SearchResponse = serde_json::from_slice(black_box(&body)).expect("decodes");
            black_box(r)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = decode
}
criterion_main!(benches);
