//! Criterion bench: checking one HTTP Digest login against every default
//! password the lists hold for its username (the work a Digest login costs).
use criterion::{Criterion, criterion_group, criterion_main};
use iotwatch::proto::http::DigestParams;
use iotwatch::signatures::credentials::CredentialDb;

fn bench(c: &mut Criterion) {
    let db = CredentialDb::builtin();
    // A response made with a password on no list: every candidate is tried.
    let header = br#"username="admin", realm="IPCamera", nonce="5f2b1c0a", uri="/", qop=auth, nc=00000001, cnonce="0a4f113b", response="00000000000000000000000000000000""#;
    let candidates = db.passwords_for("http-digest", "admin").count();
    c.bench_function(
        &format!("digest/admin_against_{candidates}_defaults"),
        |b| {
            b.iter(|| {
                let p = DigestParams::parse(std::hint::black_box(header));
                db.passwords_for("http-digest", "admin")
                    .any(|cred| p.matches(b"GET", cred.password.as_bytes()))
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
