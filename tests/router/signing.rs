//! The signing mode in process: the three re-signed files of a suite, `?original`, the
//! key endpoint, and answers that never change once served (key rotation, signing off).

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};

use super::*;
use asof::mirror::deb822::clearsigned_text;
use asof::signing::{ArchiveKey, StoredKey};

const HOST: (&str, &str) = ("host", "asof.test");

pub(super) fn fixture_key() -> ArchiveKey {
    let armored =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/test-signing.sec.asc"))
            .unwrap();
    ArchiveKey::from_armored(&armored).unwrap()
}

/// A second ed25519 key, made with rpgp from a fixed seed.
fn other_key() -> ArchiveKey {
    use pgp::composed::{KeyType, SecretKeyParamsBuilder};
    use rand::SeedableRng;
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("rotated <r@asof.invalid>".into())
        .build()
        .unwrap();
    let key = params.generate(rand::rngs::StdRng::seed_from_u64(7)).unwrap();
    ArchiveKey::from_armored(&key.to_armored_string(Default::default()).unwrap()).unwrap()
}

pub(super) fn enable(app: &App, key: &ArchiveKey) {
    let stored = StoredKey {
        fingerprint: key.fingerprint.clone(),
        secret_key: key.secret_armored.clone(),
        public_key: key.public_armored.clone(),
        set_at: 0,
    };
    app.store.signing.set_signing_key(&archive("debian"), Some(&stored), 0).unwrap();
}

fn disable(app: &App) {
    app.store.signing.set_signing_key(&archive("debian"), None, 0).unwrap();
}

/// The fixture's Release of `version` with the field asof adds for `base`.
fn release_with_field(version: &str, base: &str) -> String {
    String::from_utf8(bytes(version, RELEASE))
        .unwrap()
        .replace("MD5Sum:\n", &format!("Snapshots: {base}/debian/@SNAPSHOTID@/\nMD5Sum:\n"))
}

const RELEASE: &str = "dists/stable/Release";

fn public(key: &ArchiveKey) -> SignedPublicKey {
    SignedPublicKey::from_string(&key.public_armored).unwrap().0
}

/// Asserts that `inrelease` is `text` clearsigned by `key` at `at` (unix seconds).
#[track_caller]
fn assert_clearsigned(inrelease: &[u8], text: &str, key: &ArchiveKey, at: i64) {
    let s = std::str::from_utf8(inrelease).unwrap();
    assert_eq!(clearsigned_text(s).unwrap(), text);
    let (msg, _) = CleartextSignedMessage::from_string(s).unwrap();
    let sig = msg.verify(&public(key)).unwrap();
    assert_eq!(i64::from(sig.created().unwrap().as_secs()), at);
}

fn commit_secs(app: &App, id: SnapshotId) -> i64 {
    app.snapshot(id).committed_at_ms / 1000
}

#[tokio::test]
async fn the_three_files_are_re_signed_with_a_snapshots_field() {
    let app = App::start();
    let key = fixture_key();
    enable(&app, &key);
    let base = format!("/debian/{}/dists/stable", app.id1);
    let want = release_with_field("v1", "http://asof.test");

    let r = app.get_with(&format!("{base}/Release"), &[HOST]).await;
    let etag = format!("\"{}\"", sha256_hex(want.as_bytes()));
    let recorded = app.store.signing.resigned(
        app.snapshot(app.id1).key,
        &asof::domain::RelPath::from_segments(RELEASE.split('/')).unwrap(),
        "http://asof.test",
    );
    let made = recorded.unwrap().unwrap().made_at.max(app.id1.unix() + 1);
    let (snap, len, lm) = (app.id1.to_string(), want.len().to_string(), http_date(at(made)));
    r.assert(
        200,
        &[
            ("x-asof-snapshot", &snap),
            ("cache-control", IMMUTABLE),
            ("etag", &etag),
            ("last-modified", &lm),
            ("accept-ranges", "bytes"),
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", &len),
            ("x-content-type-options", "nosniff"),
            ("content-security-policy", "sandbox"),
        ],
    );
    assert_eq!(r.text(), want);
    // A client holding the published file (its Last-Modified) gets the re-signed one.
    let r = app.get_with(&format!("{base}/Release"), &[HOST, ("if-modified-since", &http_date(app.id1))]).await;
    assert_eq!((r.status.as_u16(), r.text()), (200, want.clone()));
    let r = app.get_with(&format!("{base}/Release"), &[HOST, ("if-modified-since", &lm)]).await;
    assert_eq!(r.status.as_u16(), 304);

    let at = commit_secs(&app, app.id1);
    let r = app.get_with(&format!("{base}/InRelease"), &[HOST]).await;
    assert_eq!(r.status, 200);
    assert_clearsigned(&r.body, &want, &key, at);

    let r = app.get_with(&format!("{base}/Release.gpg"), &[HOST]).await;
    assert_eq!(r.header("content-type"), Some("application/pgp-signature"));
    let (sig, _) = DetachedSignature::from_string(&r.text()).unwrap();
    sig.verify(&public(&key), want.as_bytes()).unwrap();
    assert_eq!(i64::from(sig.signature.created().unwrap().as_secs()), at);

    // Indices and packages are served as published.
    let p = "dists/stable/main/binary-amd64/Packages.xz";
    assert_eq!(app.get_with(&format!("/debian/{}/{p}", app.id1), &[HOST]).await.body, bytes("v1", p));
}

#[tokio::test]
async fn original_files_stay_available_and_the_digest_does_not_change() {
    let app = App::start();
    let manifest = format!("/api/v1/archives/debian/-/snapshots/{}/manifest", app.id1);
    let snapshot = format!("/api/v1/archives/debian/-/snapshots/{}", app.id1);
    let (manifest_before, json_before) = (app.get(&manifest).await.body, app.get(&snapshot).await.json());
    enable(&app, &fixture_key());
    for name in ["InRelease", "Release", "Release.gpg"] {
        let rel = format!("dists/stable/{name}");
        let resigned = app.get_with(&format!("/debian/{}/{rel}", app.id1), &[HOST]).await;
        assert_ne!(resigned.body, bytes("v1", &rel), "{name}");
        for query in ["original", "x=1&original"] {
            let r = app.get_with(&format!("/debian/{}/{rel}?{query}", app.id1), &[HOST]).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.body, bytes("v1", &rel), "{name}?{query}");
            assert_eq!(r.header("etag").unwrap(), format!("\"{}\"", sha256_hex(&bytes("v1", &rel))));
        }
    }
    assert_eq!(app.get(&manifest).await.body, manifest_before);
    let json_after = app.get(&snapshot).await.json();
    assert_eq!(json_after, json_before);
    assert_eq!(json_after["digest"], format!("sha256:{}", app.snapshot(app.id1).digest.hex()));
}

#[tokio::test]
async fn the_public_key_is_served_while_signing_is_on() {
    let app = App::start();
    let uri = "/api/v1/archives/debian/-/signing-key";
    app.get(uri).await.assert_api_error(
        404,
        "archive 'debian' is not signed by asof (turn it on with `asof archive signing debian --key FILE`)",
    );
    let key = fixture_key();
    enable(&app, &key);
    let r = app.get(uri).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/pgp-keys"));
    assert_eq!(r.header("x-asof-key-fingerprint"), Some("D35193C26D156CC17F75638D588654D34D56B23D"));
    assert_eq!(r.text(), key.public_armored);
    let served = SignedPublicKey::from_string(&r.text()).unwrap().0;
    assert_eq!(format!("{:X}", pgp::types::KeyDetails::fingerprint(&served)), key.fingerprint);
    app.get("/api/v1/archives/nosuch/-/signing-key").await.assert_api_error(404, "no archive named 'nosuch'");
}

#[tokio::test]
async fn served_answers_survive_key_rotation_and_signing_off() {
    let app = App::start();
    let (first, second) = (fixture_key(), other_key());
    assert_ne!(first.fingerprint, second.fingerprint);
    enable(&app, &first);
    let pinned = format!("/debian/{}/dists/stable/InRelease", app.id1);
    let before = app.get_with(&pinned, &[HOST]).await;
    assert_eq!(before.header("cache-control"), Some(IMMUTABLE));
    assert_clearsigned(&before.body, &release_with_field("v1", "http://asof.test"), &first, commit_secs(&app, app.id1));

    enable(&app, &second);
    let after = app.get_with(&pinned, &[HOST]).await;
    assert_eq!((after.body.clone(), after.header("etag")), (before.body.clone(), before.header("etag")));
    // A snapshot not served yet is signed by the key now in force.
    let other = format!("/debian/{}/dists/stable/InRelease", app.id2);
    let r2 = app.get_with(&other, &[HOST]).await;
    assert_clearsigned(&r2.body, &release_with_field("v2", "http://asof.test"), &second, commit_secs(&app, app.id2));

    disable(&app);
    assert_eq!(app.get_with(&pinned, &[HOST]).await.body, before.body, "final answers stay as served");
    assert_eq!(app.get_with(&other, &[HOST]).await.body, r2.body);
    // Never served re-signed, and signing off: as published.
    let release = format!("/debian/{}/{RELEASE}", app.id1);
    assert_eq!(app.get_with(&release, &[HOST]).await.body, bytes("v1", RELEASE));
}

#[tokio::test]
async fn answers_that_may_change_follow_the_setting() {
    // One snapshot stamped at the current second, so that the next second is soon past
    // and is answered, not final yet, from that snapshot.
    let app = App::one_fresh_snapshot();
    let id = app.id1;
    let later = at(id.unix() + 1);
    wait_until_past(later);
    let key = fixture_key();
    enable(&app, &key);
    let uri = format!("/debian/{later}/dists/stable/InRelease");
    let r = app.get_with(&uri, &[HOST]).await;
    assert_eq!(r.header("cache-control"), Some(SHORT));
    assert_clearsigned(&r.body, &release_with_field("v1", "http://asof.test"), &key, commit_secs(&app, id));
    disable(&app);
    let r = app.get_with(&uri, &[HOST]).await;
    assert_eq!(r.body, bytes("v1", "dists/stable/InRelease"));
}

#[tokio::test]
async fn the_base_is_public_url_or_the_host() {
    let app = App::start();
    enable(&app, &fixture_key());
    let uri = format!("/debian/{}/{RELEASE}", app.id1);
    let r = app.get_with(&uri, &[("host", "Mirror.Example:8080")]).await;
    assert_eq!(r.text(), release_with_field("v1", "http://mirror.example:8080"));
    app.get_with(&uri, &[("host", "evil/x")])
        .await
        .assert_error(400, "the Host header is not a valid host[:port] (it names the Snapshots: URL)");

    let options = ServeOptions { public_url: Some("https://asof.example/".into()), ..ServeOptions::default() };
    let app = App::with_options(options);
    enable(&app, &fixture_key());
    let uri = format!("/debian/{}/{RELEASE}", app.id1);
    let r = app.get_with(&uri, &[("host", "ignored.example")]).await;
    assert_eq!(r.text(), release_with_field("v1", "https://asof.example"));
}

#[tokio::test]
async fn invented_hosts_cannot_make_the_server_sign_and_keep_files_without_end() {
    let app = App::start();
    enable(&app, &fixture_key());
    let uri = format!("/debian/{}/{RELEASE}", app.id1);
    for i in 0..asof::signing::resign::MAX_BASES {
        let host = format!("h{i}.example");
        let r = app.get_with(&uri, &[("host", host.as_str())]).await;
        assert_eq!(r.text(), release_with_field("v1", &format!("http://{host}")));
    }
    // One more base: the published file, nothing signed or recorded.
    let r = app.get_with(&uri, &[("host", "one-more.example")]).await;
    assert_eq!(r.body.to_vec(), bytes("v1", RELEASE));
    let path = asof::domain::RelPath::from_segments(RELEASE.split('/')).unwrap();
    assert_eq!(app.store.signing.resigned_bases(app.snapshot(app.id1).key, &path).unwrap(), 4);
    // The bases already recorded keep their files.
    let r = app.get_with(&uri, &[("host", "h0.example")]).await;
    assert_eq!(r.text(), release_with_field("v1", "http://h0.example"));
}

#[tokio::test]
async fn the_live_path_is_re_signed_and_by_hash_urls_are_not() {
    let app = App::start();
    let key = fixture_key();
    enable(&app, &key);
    let r = app.get_with("/debian/dists/stable/InRelease", &[HOST]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-asof-snapshot"), Some(app.id2.to_string().as_str()));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    assert_clearsigned(&r.body, &release_with_field("v2", "http://asof.test"), &key, commit_secs(&app, app.id2));
    // The same bytes as the pinned path of that snapshot: one recorded file.
    let pinned = app.get_with(&format!("/debian/{}/dists/stable/InRelease", app.id2), &[HOST]).await;
    assert_eq!(pinned.body, r.body);

    let original = bytes("v1", "dists/stable/InRelease");
    let by_hash = format!("/debian/{}/dists/stable/by-hash/SHA256/{}", app.id1, sha256_hex(&original));
    let r = app.get_with(&by_hash, &[HOST]).await;
    assert_eq!((r.status.as_u16(), r.body.to_vec()), (200, original));
}

/// An archive that was never signed serves its Release files whatever the Host header says:
/// the Host only names the `Snapshots:` URL of re-signed files.
#[tokio::test]
async fn an_unsigned_archive_ignores_an_odd_host() {
    let app = App::start();
    let latest = format!("/debian/{}/{RELEASE}", app.id2);
    let r = app.get_with(&latest, &[("host", "evil/x")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, bytes("v2", RELEASE));
}
