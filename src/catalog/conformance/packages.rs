//! `PackageStore`: indexing snapshots in order, once, and every query of the package index.

use super::Fixture;
use super::snapshots::{commit_gapped, file, name, path, upsert};
use crate::catalog::Change;
use crate::domain::Digest;
use crate::packages::parse::{IndexId, Kind, Listed, pool_filename};
use crate::packages::spill::PackageSpill;
use crate::packages::store::{IndexChanges, Toward};

fn index(kind: Kind, architecture: &str) -> IndexId {
    IndexId { suite: "stable".into(), component: "main".into(), architecture: architecture.into(), kind }
}

fn listed(index: &IndexId, name: &str, version: &str, source: &str) -> Listed {
    Listed {
        name: name.into(),
        version: version.into(),
        source: source.into(),
        source_version: version.into(),
        filename: pool_filename(index, name, version, source),
        size: 100,
        sha256: Some(Digest::of(name.as_bytes())),
    }
}

fn spill(dir: &std::path::Path, rows: Vec<(i64, Listed)>) -> PackageSpill {
    let mut s = PackageSpill::new(dir);
    for (paragraph, l) in rows {
        s.push(paragraph, l);
    }
    s
}

pub(crate) fn indexing_goes_in_order_once_and_every_query_reads_it(f: &Fixture) {
    let p = &*f.packages;
    let scratch = tempfile::tempdir().unwrap();
    let deb = name("deb");
    let s1 = commit_gapped(&*f.catalog, &deb, vec![upsert("dists/x/Release", file(1)), upsert("pool/a", file(2))]);
    let s2 = commit_gapped(
        &*f.catalog,
        &deb,
        vec![upsert("dists/x/Release", file(3)), upsert("dists/x/InRelease", file(4)), Change::Remove(path("pool/a"))],
    );
    let archive_id = s1.key.archive_id;
    assert!(p.index_progress(&name("ghost")).unwrap().is_none());
    let progress = p.index_progress(&deb).unwrap().unwrap();
    assert_eq!((progress.archive_id, progress.indexed_seq, progress.latest_seq), (archive_id, 0, 2));
    let mut changed = p.changed_dists_paths(archive_id, 2).unwrap();
    changed.sort();
    assert_eq!(changed, ["dists/x/InRelease", "dists/x/Release"]);

    let (bin, src) = (index(Kind::Binary, "amd64"), index(Kind::Source, "source"));
    let mut libfoo = listed(&bin, "libfoo1", "2.0", "foo");
    libfoo.filename = "pool/elsewhere/libfoo1.deb".into();
    let first = || IndexChanges {
        insert: vec![
            (
                bin.clone(),
                spill(scratch.path(), vec![(11, listed(&bin, "hello", "1.0", "hello")), (12, libfoo.clone())]),
            ),
            (src.clone(), spill(scratch.path(), vec![(21, listed(&src, "foo", "2.0", "foo"))])),
        ],
        problems: vec![("dists/x/main/binary-i386/Packages.xz".into(), "truncated".into())],
        ..IndexChanges::default()
    };
    assert!(!p.apply_index(archive_id, 2, &mut first()).unwrap(), "snapshot 1 comes first");
    assert!(p.package_indices(archive_id).unwrap().is_empty(), "and nothing was written");
    assert!(p.apply_index(archive_id, 1, &mut first()).unwrap());
    assert!(!p.apply_index(archive_id, 1, &mut first()).unwrap(), "done already");
    assert_eq!(p.index_progress(&deb).unwrap().unwrap().indexed_seq, 1);

    let mut indices: Vec<IndexId> = p.package_indices(archive_id).unwrap().into_iter().map(|(_, i)| i).collect();
    indices.sort();
    let mut expected = vec![bin.clone(), src.clone()];
    expected.sort();
    assert_eq!(indices, expected);
    let mut live: Vec<Option<i64>> = p.live_paragraphs(archive_id, &bin).unwrap().into_iter().map(|(_, h)| h).collect();
    live.sort();
    assert_eq!(live, [Some(11), Some(12)]);
    assert_eq!(
        p.index_problems(archive_id, 1).unwrap(),
        [("dists/x/main/binary-i386/Packages.xz".into(), "truncated".into())]
    );

    let hello = p.package_rows(archive_id, "hello", Kind::Binary).unwrap();
    assert_eq!(hello.len(), 1);
    assert_eq!(
        (&hello[0].listed, hello[0].first_seq, hello[0].last_seq),
        (&listed(&bin, "hello", "1.0", "hello"), 1, None)
    );
    assert!(p.package_rows(archive_id, "hello", Kind::Source).unwrap().is_empty());
    let of_foo = p.binaries_of(archive_id, "foo").unwrap();
    assert_eq!(of_foo.iter().map(|r| &r.listed).collect::<Vec<_>>(), [&libfoo], "a stored filename is kept");
    assert_eq!(p.binaries_of(archive_id, "hello").unwrap().len(), 1, "a binary named as its source");

    // Snapshot 2: hello upgraded, libfoo1's paragraph digest recorded anew.
    let libfoo_id = of_foo[0].id;
    let mut second = IndexChanges {
        close: vec![hello[0].id],
        insert: vec![(bin.clone(), spill(scratch.path(), vec![(13, listed(&bin, "hello", "1.1", "hello"))]))],
        rehash: vec![(libfoo_id, 99)],
        ..IndexChanges::default()
    };
    assert!(p.apply_index(archive_id, 2, &mut second).unwrap());
    let mut live: Vec<Option<i64>> = p.live_paragraphs(archive_id, &bin).unwrap().into_iter().map(|(_, h)| h).collect();
    live.sort();
    assert_eq!(live, [Some(13), Some(99)]);
    let mut between: Vec<(String, String, u64, Option<u64>)> = p
        .rows_changed_between(archive_id, 1, 2)
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.version, r.first_seq, r.last_seq))
        .collect();
    between.sort();
    assert_eq!(between, [("hello".into(), "1.0".into(), 1, Some(2)), ("hello".into(), "1.1".into(), 2, None)]);
    let by_id = p.packages_by_id(&[libfoo_id, hello[0].id]).unwrap();
    assert_eq!(by_id.iter().map(|r| r.id).collect::<Vec<_>>(), [libfoo_id, hello[0].id], "in the order asked");
    assert_eq!(by_id[1].last_seq, Some(2));

    assert_eq!(p.names_at(archive_id, 1, "lib", None, 10).unwrap(), ["libfoo1"]);
    assert_eq!(p.names_at(archive_id, 2, "", None, 10).unwrap(), ["hello", "libfoo1"]);
    assert_eq!(p.names_at(archive_id, 2, "", Some("hello"), 10).unwrap(), ["libfoo1"]);
    assert!(p.names_at(archive_id, 2, "_", None, 10).unwrap().is_empty(), "LIKE wildcards are escaped");
    assert!(p.names_at(archive_id, 2, "%", None, 10).unwrap().is_empty());
    assert!(p.names_at(archive_id, 2, "foo", None, 10).unwrap() == ["libfoo1"], "sources are not names of binaries");

    assert_eq!(p.snapshot_id(archive_id, 1, Toward::Later).unwrap(), Some(s1.id));
    assert_eq!(p.snapshot_id(archive_id, 5, Toward::Earlier).unwrap(), Some(s2.id));
    assert_eq!(p.snapshot_id(archive_id, 5, Toward::Later).unwrap(), None);
}
