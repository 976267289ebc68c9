//! The text of a re-signed Release: the original with a `Snapshots:` field, and the
//! Release text inside a clearsigned InRelease.

/// `release` with its `Snapshots:` field set to `url`: an existing one (with any
/// continuation lines) is dropped, and the new one goes before the first multi-line field
/// (the hash lists), or at the end of the paragraph when there is none. Every other byte
/// is kept, so the hashes it lists still describe the snapshot's indices.
pub fn with_snapshots_field(release: &str, url: &str) -> String {
    let field = format!("Snapshots: {url}\n");
    let mut out = String::with_capacity(release.len() + field.len());
    let mut inserted = false;
    let mut dropping = false;
    for line in release.split_inclusive('\n') {
        let continuation = line.starts_with([' ', '\t']);
        if dropping && continuation {
            continue;
        }
        dropping = false;
        if !continuation && field_name(line).is_some_and(|n| n.eq_ignore_ascii_case("Snapshots")) {
            dropping = true;
            continue;
        }
        let ends_paragraph = line.trim().is_empty();
        let multi_line = !continuation
            && field_name(line).is_some()
            && line.split_once(':').is_some_and(|(_, v)| v.trim().is_empty());
        if !inserted && (ends_paragraph || multi_line) {
            out.push_str(&field);
            inserted = true;
        }
        out.push_str(line);
    }
    if !inserted {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&field);
    }
    out
}

fn field_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(':')?;
    (!name.is_empty() && !name.contains([' ', '\t'])).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::deb822::clearsigned_text;

    const RELEASE: &str = "Origin: asof-test\nLabel: asof-test\nSuite: stable\nDate: Mon, 01 Jan 2024 00:00:00 UTC\n\
Acquire-By-Hash: yes\nMD5Sum:\n 0123 1121 main/binary-amd64/Packages\nSHA256:\n abcd 1121 main/binary-amd64/Packages\n";

    #[test]
    fn the_field_goes_before_the_hash_lists() {
        let out = with_snapshots_field(RELEASE, "http://h:1/deb/@SNAPSHOTID@/");
        assert_eq!(
            out,
            "Origin: asof-test\nLabel: asof-test\nSuite: stable\nDate: Mon, 01 Jan 2024 00:00:00 UTC\n\
Acquire-By-Hash: yes\nSnapshots: http://h:1/deb/@SNAPSHOTID@/\nMD5Sum:\n 0123 1121 main/binary-amd64/Packages\n\
SHA256:\n abcd 1121 main/binary-amd64/Packages\n"
        );
    }

    #[test]
    fn an_existing_field_is_replaced_with_its_continuation_lines() {
        let release = "Origin: x\nsnapshots: https://elsewhere/@SNAPSHOTID@\n more\nSuite: s\nSHA256:\n ab 1 f\n";
        assert_eq!(
            with_snapshots_field(release, "http://h/a/@SNAPSHOTID@/"),
            "Origin: x\nSuite: s\nSnapshots: http://h/a/@SNAPSHOTID@/\nSHA256:\n ab 1 f\n"
        );
    }

    #[test]
    fn without_hash_lists_the_field_ends_the_paragraph() {
        assert_eq!(with_snapshots_field("Origin: x\nSuite: s", "u"), "Origin: x\nSuite: s\nSnapshots: u\n");
        assert_eq!(with_snapshots_field("Origin: x\n\n", "u"), "Origin: x\nSnapshots: u\n\n");
    }

    #[test]
    fn clearsigned_text_undoes_the_framework() {
        let msg = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: x\n- -dashed\nSHA256:\n ab 1 f\n\
-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        assert_eq!(clearsigned_text(msg).unwrap(), "Origin: x\n-dashed\nSHA256:\n ab 1 f\n");
        assert_eq!(clearsigned_text("Origin: x\n"), None);
        assert_eq!(clearsigned_text("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: x\n"), None);
    }

    #[test]
    fn the_fixture_inrelease_holds_the_fixture_release() {
        let root = env!("CARGO_MANIFEST_DIR");
        for v in ["v1", "v2"] {
            let dir = format!("{root}/fixtures/apt/{v}/dists/stable");
            let inrelease = std::fs::read_to_string(format!("{dir}/InRelease")).unwrap();
            let release = std::fs::read_to_string(format!("{dir}/Release")).unwrap();
            assert_eq!(clearsigned_text(&inrelease).unwrap(), release, "{v}");
        }
    }
}
