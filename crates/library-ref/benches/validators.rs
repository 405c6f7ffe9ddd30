//! ns per call of each validator and of the parsers.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use library_ref::{
    is_image_hash, is_library_pull_ref, is_library_push_ref, is_ref_part, parse_library_path, Ref,
};

const PULL: &str = "library://entity/collection/container:latest";
const PUSH: &str = "library://entity/collection/container:1.0,latest";
const PART: &str = "some-container_name.v2";
const HASH: &str = "sha256.e50a30881ace3d5944f5661d222db7bee5296be9e4dc7c1fcb7604bcae926e88";

fn validators(c: &mut Criterion) {
    let mut g = c.benchmark_group("validators");
    g.bench_function("is_library_pull_ref", |b| {
        b.iter(|| is_library_pull_ref(black_box(PULL)))
    });
    g.bench_function("is_library_push_ref", |b| {
        b.iter(|| is_library_push_ref(black_box(PUSH)))
    });
    g.bench_function("is_ref_part", |b| b.iter(|| is_ref_part(black_box(PART))));
    g.bench_function("is_image_hash", |b| {
        b.iter(|| is_image_hash(black_box(HASH)))
    });
    g.finish();
    let mut g = c.benchmark_group("parsers");
    g.bench_function("Ref::parse", |b| b.iter(|| Ref::parse(black_box(PULL))));
    g.bench_function("Ref::parse_ambiguous", |b| {
        b.iter(|| Ref::parse_ambiguous(black_box(PULL)))
    });
    g.bench_function("parse_library_path", |b| {
        b.iter(|| parse_library_path(black_box(PUSH)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = validators
}
criterion_main!(benches);
