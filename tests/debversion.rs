//! `DebVersion` and `Constraint` checked against the real `dpkg --compare-versions`, on every
//! `Version:` field of the fixtures (the apt fixtures and a sample of real Debian 12 indices in
//! `fixtures/debian/versions-sample.txt`) and on versions generated from realistic pieces.
//!
//! dpkg runs once per comparison, so the pairs go to one `sh` loop per batch; the whole file
//! takes a few seconds. dpkg must be installed: a missing dpkg fails the tests, it never skips.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::process::{Command, Stdio};

use asof::packages::version::{Constraint, DebVersion, Op};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// Random pairs drawn per kind in each run, on top of the fixed pairs from the fixtures.
const RANDOM_PAIRS: usize = 100;

/// `(package, version)` for every `Version:` field of the uncompressed `Packages` and `Sources`
/// indices under fixtures/ and of the sample of real ones, in file order.
fn fixture_versions() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(FIXTURES).sort_by_file_name() {
        let entry = entry.expect("walk fixtures/");
        let path = entry.path();
        let name = entry.file_name().to_string_lossy();
        let index = name.ends_with("Packages") || name.ends_with("Sources") || name == "versions-sample.txt";
        if !entry.file_type().is_file() || !index {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut package = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("Package: ") {
                package = name.trim().to_string();
            } else if let Some(version) = line.strip_prefix("Version: ") {
                found.push((package.clone(), version.trim().to_string()));
            } else if line.is_empty() {
                package.clear();
            }
        }
    }
    found
}

fn parse(v: &str) -> DebVersion {
    v.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Fails the test, loudly, when dpkg is not there.
fn require_dpkg() {
    let out = Command::new("dpkg").arg("--version").output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    assert!(ok, "this test compares with the real dpkg, which must be installed (apt-get install dpkg): {out:?}");
}

/// `dpkg --compare-versions a rel b` for each triple, in one shell loop: true or false.
/// A dpkg error or any warning (a version dpkg finds suspect) fails the test.
fn dpkg_relations(triples: &[(&str, &str, &str)]) -> Vec<bool> {
    require_dpkg();
    if triples.is_empty() {
        return Vec::new();
    }
    let input: String = triples.iter().map(|(a, rel, b)| format!("{a} {rel} {b}\n")).collect();
    let mut child = Command::new("sh")
        .args(["-c", r#"while read -r a rel b; do dpkg --compare-versions "$a" "$rel" "$b"; echo $?; done"#])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait for sh");
    writer.join().expect("stdin writer").expect("write to sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "dpkg complained ({}): {stderr}", out.status);
    let codes: Vec<&str> = std::str::from_utf8(&out.stdout).expect("utf-8").lines().collect();
    assert_eq!(codes.len(), triples.len(), "one answer per comparison");
    codes
        .iter()
        .zip(triples)
        .map(|(code, t)| match *code {
            "0" => true,
            "1" => false,
            other => panic!("dpkg --compare-versions {t:?} exited with {other}"),
        })
        .collect()
}

/// dpkg's ordering of each pair: `lt` for all, then `gt` for those not less; neither is equal.
fn dpkg_order(pairs: &[(String, String)]) -> Vec<Ordering> {
    let lt = dpkg_relations(&pairs.iter().map(|(a, b)| (a.as_str(), "lt", b.as_str())).collect::<Vec<_>>());
    let rest: Vec<_> = pairs.iter().zip(&lt).filter(|(_, lt)| !**lt).map(|(p, _)| p).collect();
    let gt = dpkg_relations(&rest.iter().map(|(a, b)| (a.as_str(), "gt", b.as_str())).collect::<Vec<_>>());
    let mut gt = gt.into_iter();
    lt.into_iter()
        .map(|lt| match lt || gt.next().expect("one gt answer per pair not less") {
            false => Ordering::Equal,
            true if lt => Ordering::Less,
            true => Ordering::Greater,
        })
        .collect()
}

fn hash_of(v: &DebVersion) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Every pair where `DebVersion` disagrees with dpkg, or equal versions hash differently.
fn disagreements(pairs: &[(String, String)]) -> Vec<String> {
    let theirs = dpkg_order(pairs);
    let mut wrong = Vec::new();
    for ((a, b), dpkg) in pairs.iter().zip(theirs) {
        let (va, vb) = (parse(a), parse(b));
        let ours = va.cmp(&vb);
        if ours != dpkg || vb.cmp(&va) != dpkg.reverse() || (va == vb) != dpkg.is_eq() {
            wrong.push(format!("{a} vs {b}: dpkg {dpkg:?}, DebVersion {ours:?}"));
        } else if dpkg.is_eq() && hash_of(&va) != hash_of(&vb) {
            wrong.push(format!("{a} = {b} but their hashes differ"));
        }
    }
    wrong
}

/// Pieces that make versions collide often: `~`, `+`, letters vs non-letters, zeros.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        ".",
        "~",
        "~~",
        "+",
        "a",
        "b",
        "z",
        "A",
        "rc",
        "0",
        "00",
        "1",
        "01",
        "9",
        "10",
        ".0",
        "+dfsg",
        "~rc1",
        "+b1",
        "+really",
        "+git20240101",
    ])
}

fn revision() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        "",
        "-1",
        "-0",
        "-01",
        "-1.1",
        "-1~",
        "-1+",
        "-a",
        "-0+deb12u1",
        "-0+deb12u2",
        "-1~bpo12+1",
        "-1+b1",
        "-1ubuntu1",
        "-1~0",
        "-2",
    ])
}

fn epoch() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", "0:", "1:", "2:", "01:"])
}

fn tail() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..4).prop_map(|p| p.concat())
}

/// Two versions sharing a prefix, so the comparison reaches their later pieces.
fn generated_pair() -> impl Strategy<Value = (String, String)> {
    (epoch(), epoch(), "[0-9]{1,2}", tail(), tail(), tail(), revision(), revision()).prop_map(
        |(ea, eb, digits, common, ta, tb, ra, rb)| {
            (format!("{ea}{digits}{common}{ta}{ra}"), format!("{eb}{digits}{common}{tb}{rb}"))
        },
    )
}

/// Small edits of a real version: what the next upload, backport or rebuild looks like.
fn mutated(real: Vec<String>) -> impl Strategy<Value = (String, String)> {
    let edits = prop::sample::select(vec![
        "~", "~~", "+", "+b1", "+b2", ".0", "0", "a", ".1", "+deb12u1", "~deb12u1", "-1", "~bpo12+1", "+nmu1",
    ]);
    (prop::sample::select(real), edits, any::<prop::sample::Index>(), 0..10u8).prop_map(|(v, edit, at, digit)| {
        let digits: Vec<usize> = v.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
        let i = digits[at.index(digits.len())];
        let bumped = format!("{}{digit}{}", &v[..i], &v[i + 1..]);
        let appended = format!("{bumped}{edit}");
        (v, appended)
    })
}

/// `v` rewritten in a way dpkg reads as the same version, to exercise `Eq` and `Hash`.
fn equivalent(v: String, rewrite: [bool; 4], at: prop::sample::Index) -> (String, String) {
    let mut w = v.clone();
    let run_starts: Vec<usize> = w
        .char_indices()
        .filter(|&(i, c)| c.is_ascii_digit() && !w[..i].ends_with(|p: char| p.is_ascii_digit()))
        .map(|(i, _)| i)
        .collect();
    if rewrite[0] {
        w.insert(run_starts[at.index(run_starts.len())], '0');
    }
    if rewrite[1] && !w.ends_with(|c: char| c.is_ascii_digit()) {
        w.push('0');
    }
    if rewrite[2] && !w.contains('-') {
        w.push_str("-0");
    }
    if rewrite[3] && !w.contains(':') {
        w.insert_str(0, "0:");
    }
    (v, w)
}

fn equivalent_pair(versions: impl Strategy<Value = String>) -> impl Strategy<Value = (String, String)> {
    (versions, any::<[bool; 4]>(), any::<prop::sample::Index>()).prop_map(|(v, rw, at)| equivalent(v, rw, at))
}

fn sample<T: std::fmt::Debug>(runner: &mut TestRunner, strategy: impl Strategy<Value = T>, n: usize) -> Vec<T> {
    (0..n).map(|_| strategy.new_tree(runner).expect("generate").current()).collect()
}

/// Pairs the test always checks: all versions of each fixture package against each other.
fn fixture_pairs(fixtures: &[(String, String)]) -> Vec<(String, String)> {
    let mut by_package: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (package, version) in fixtures {
        by_package.entry(package).or_default().push(version);
    }
    let mut pairs = Vec::new();
    for versions in by_package.values() {
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i + 1..] {
                pairs.push((a.to_string(), b.to_string()));
            }
        }
    }
    pairs
}

#[test]
fn every_fixture_version_is_a_valid_debian_version() {
    let fixtures = fixture_versions();
    assert!(fixtures.len() >= 500, "fixtures/ holds {} Version: fields, expected the sample of ~500", fixtures.len());
    for (_, v) in &fixtures {
        assert_eq!(parse(v).to_string(), *v);
    }
    let versions: Vec<&str> = fixtures.iter().map(|(_, v)| v.as_str()).collect();
    for apt_fixture in ["1.0-1", "1.1-1", "0.1-1", "2025b-0+deb12u1"] {
        assert!(versions.contains(&apt_fixture), "{apt_fixture} from fixtures/apt/ is read");
    }
}

#[test]
fn ordering_matches_dpkg_on_fixture_and_generated_versions() {
    let fixtures = fixture_versions();
    let real: Vec<String> = fixtures.iter().map(|(_, v)| v.clone()).collect();
    let real_versions = real.clone();
    let mut runner = TestRunner::default();
    let mut pairs = fixture_pairs(&fixtures);
    let fixed = pairs.len();
    let real_pair = (prop::sample::select(real.clone()), prop::sample::select(real.clone()));
    pairs.extend(sample(&mut runner, real_pair, RANDOM_PAIRS));
    pairs.extend(sample(&mut runner, mutated(real), RANDOM_PAIRS));
    pairs.extend(sample(&mut runner, generated_pair(), RANDOM_PAIRS));
    pairs.extend(sample(&mut runner, equivalent_pair(prop::sample::select(real_versions)), RANDOM_PAIRS / 4));
    pairs.extend(sample(&mut runner, equivalent_pair(generated_pair().prop_map(|(a, _)| a)), RANDOM_PAIRS / 4));
    assert!(fixed >= 40, "{fixed} pairs of versions of the same fixture package");

    let wrong = disagreements(&pairs);
    assert!(wrong.is_empty(), "{} of {} pairs disagree with dpkg:\n{}", wrong.len(), pairs.len(), wrong.join("\n"));
    // dpkg's equal case, where Eq and Hash are tested, must be reached with different strings.
    let equal = pairs.iter().filter(|(a, b)| parse(a) == parse(b) && a != b).count();
    assert!(equal >= RANDOM_PAIRS / 4, "only {equal} pairs of different strings compared equal");
}

#[test]
fn constraints_match_dpkg_operators() {
    let mut runner = TestRunner::default();
    let pairs = sample(&mut runner, generated_pair(), 40);
    let mut triples = Vec::new();
    for (a, b) in &pairs {
        for op in Op::ALL {
            // dpkg --compare-versions takes the same five operators as a dependency field.
            triples.push((a.as_str(), op.as_str(), b.as_str()));
        }
    }
    let dpkg = dpkg_relations(&triples);
    let mut wrong = Vec::new();
    for (&(a, op, b), dpkg) in triples.iter().zip(dpkg) {
        let constraint: Constraint = format!("{op}{b}").parse().expect("constraint");
        if constraint.satisfied_by(&parse(a)) != dpkg {
            wrong.push(format!("{a} {op} {b}: dpkg says {dpkg}"));
        }
    }
    assert!(wrong.is_empty(), "constraints disagree with dpkg:\n{}", wrong.join("\n"));
}

#[test]
fn versions_rejected_here_are_ones_dpkg_rejects_or_warns_about() {
    require_dpkg();
    let bad = [
        "1.0 1",
        ":1.0",
        "a:1.0",
        "-1:1.0",
        "2147483648:1",
        "1:",
        "-1",
        "1:-1",
        "1.0-",
        "abc",
        "~1",
        "1.0_rc1-1",
        "1.ü",
        "1.0-1_2",
    ];
    for v in bad {
        assert!(v.parse::<DebVersion>().is_err(), "{v:?} is rejected");
        // The bad version goes last so that `-1` is not read as an option.
        let out = Command::new("dpkg").args(["--compare-versions", "9", "gt", v]).output().expect("run dpkg");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let refused = out.status.code() == Some(2) && stderr.contains("has bad syntax");
        let warned = stderr.starts_with(&format!("dpkg: warning: version '{v}' has bad syntax:"));
        assert!(refused || warned, "dpkg takes {v:?} without complaint: {} {stderr}", out.status);
    }
}
