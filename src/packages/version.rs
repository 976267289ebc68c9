//! Debian package versions (`[epoch:]upstream[-revision]`) ordered exactly as dpkg orders them,
//! and the version constraints (`>=1.2-3`, `<<2.0`...) the package API filters with.
//!
//! Ordering is the `debversion` crate's; parsing is stricter than that crate and follows dpkg's
//! own `parseversion` (which `dpkg --compare-versions` uses), so that every accepted version is
//! one dpkg accepts without a warning. `tests/debversion.rs` checks the ordering against dpkg.
//!
//! debversion 0.5.5 orders a part that ends in a non-digit before the same part followed by
//! zeros (`1a` < `1a0`, `1~` < `1~0`), where dpkg counts the missing number as 0 and finds them
//! equal. The crate is therefore given each part with a trailing `0` added after a final
//! non-digit, which changes nothing for dpkg and makes the crate agree with it.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// A validated Debian version. `Display` gives back the string it was parsed from, unchanged;
/// `Eq`, `Ord` and `Hash` follow dpkg, so `1.0`, `0:1.0`, `1.0-0` and `1.00` are all equal.
#[derive(Clone)]
pub struct DebVersion {
    text: Box<str>,
    /// Where the upstream version starts and ends in `text`; the revision follows its end + 1.
    upstream: (usize, usize),
    /// The parts as the ordering crate must see them (see the module doc).
    key: debversion::Version,
}

/// Why a string is not a Debian version; the message names the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version '{input}': {fault}")]
pub struct VersionError {
    /// The offending string, cut to [`VersionError::SHOWN_CHARS`] characters.
    pub input: String,
    pub fault: VersionFault,
}

/// The rules of dpkg's `parseversion`, errors and warnings alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VersionFault {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {max} bytes", max = DebVersion::MAX_LEN)]
    TooLong,
    #[error("it contains whitespace")]
    Whitespace,
    #[error("the epoch before ':' is empty")]
    EmptyEpoch,
    #[error("the epoch before ':' is not a number")]
    EpochNotNumber,
    #[error("the epoch is larger than {max}", max = DebVersion::MAX_EPOCH)]
    EpochTooBig,
    #[error("nothing follows the epoch's ':'")]
    NothingAfterEpoch,
    #[error("the upstream version before the last '-' is empty")]
    EmptyUpstream,
    #[error("the revision after the last '-' is empty")]
    EmptyRevision,
    #[error("the upstream version does not start with a digit")]
    UpstreamNotDigit,
    #[error("character '{0}' is not allowed in the upstream version (only A-Z a-z 0-9 . + ~ - :)")]
    BadUpstreamChar(char),
    #[error("character '{0}' is not allowed in the revision (only A-Z a-z 0-9 . + ~)")]
    BadRevisionChar(char),
}

impl VersionError {
    /// Long inputs are cut in messages so an error body never echoes a huge query string.
    pub const SHOWN_CHARS: usize = 100;

    fn new(input: &str, fault: VersionFault) -> Self {
        Self { input: shorten(input), fault }
    }
}

fn shorten(input: &str) -> String {
    let mut shown: String = input.chars().take(VersionError::SHOWN_CHARS).collect();
    if shown.len() < input.len() {
        shown.push('…');
    }
    shown
}

impl DebVersion {
    /// Real versions stay under 100 bytes; the cap bounds what untrusted indices and queries cost.
    pub const MAX_LEN: usize = 256;
    /// dpkg stores the epoch in an `int`.
    pub const MAX_EPOCH: u32 = i32::MAX as u32;

    /// The string this version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch, 0 when the string has none.
    pub fn epoch(&self) -> u32 {
        self.key.epoch.unwrap_or(0)
    }

    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision, `None` for a native version such as `1.2`.
    pub fn revision(&self) -> Option<&str> {
        self.text.get(self.upstream.1 + 1..)
    }
}

impl FromStr for DebVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts = split(s).map_err(|fault| VersionError::new(s, fault))?;
        // The upstream version starts after the epoch's colon, which is the first one.
        let start = s.find(':').map_or(0, |colon| colon + 1);
        let key = debversion::Version {
            epoch: parts.epoch,
            upstream_version: zero_terminated(parts.upstream),
            debian_revision: parts.revision.map(zero_terminated),
        };
        Ok(Self { text: s.into(), upstream: (start, start + parts.upstream.len()), key })
    }
}

/// `part` with a `0` added if it ends in a non-digit, the same for dpkg (see the module doc).
fn zero_terminated(part: &str) -> String {
    let mut part = part.to_string();
    if !part.ends_with(|c: char| c.is_ascii_digit()) {
        part.push('0');
    }
    part
}

/// A version string cut into its parts, borrowed from it.
struct Parts<'a> {
    epoch: Option<u32>,
    upstream: &'a str,
    revision: Option<&'a str>,
}

/// dpkg's `parseversion`: the epoch is everything before the first ':', the revision everything
/// after the last '-'.
fn split(s: &str) -> Result<Parts<'_>, VersionFault> {
    if s.is_empty() {
        return Err(VersionFault::Empty);
    }
    if s.len() > DebVersion::MAX_LEN {
        return Err(VersionFault::TooLong);
    }
    if s.chars().any(char::is_whitespace) {
        return Err(VersionFault::Whitespace);
    }
    let (epoch, rest) = match s.split_once(':') {
        Some((epoch, rest)) => {
            let epoch = parse_epoch(epoch)?;
            if rest.is_empty() {
                return Err(VersionFault::NothingAfterEpoch);
            }
            (Some(epoch), rest)
        }
        None => (None, s),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    if upstream.is_empty() {
        return Err(VersionFault::EmptyUpstream);
    }
    if revision == Some("") {
        return Err(VersionFault::EmptyRevision);
    }
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(VersionFault::UpstreamNotDigit);
    }
    if let Some(c) = upstream.chars().find(|&c| !(c.is_ascii_alphanumeric() || ".-+~:".contains(c))) {
        return Err(VersionFault::BadUpstreamChar(c));
    }
    if let Some(c) = revision.and_then(|r| r.chars().find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))) {
        return Err(VersionFault::BadRevisionChar(c));
    }
    Ok(Parts { epoch, upstream, revision })
}

fn parse_epoch(epoch: &str) -> Result<u32, VersionFault> {
    if epoch.is_empty() {
        return Err(VersionFault::EmptyEpoch);
    }
    if !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionFault::EpochNotNumber);
    }
    match epoch.parse::<u32>() {
        Ok(n) if n <= DebVersion::MAX_EPOCH => Ok(n),
        _ => Err(VersionFault::EpochTooBig),
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DebVersion({:?})", &*self.text)
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DebVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebVersion {}

/// Hashes what dpkg compares, so versions that are equal hash equally (`1.0` and `0:1.00-0`).
impl Hash for DebVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch().hash(state);
        comparison_pieces(self.upstream()).hash(state);
        comparison_pieces(self.revision().unwrap_or("")).hash(state);
    }
}

/// What dpkg's `verrevcmp` sees in one part: alternating non-digit runs and numbers, where a
/// number is its digits without leading zeros (an empty run counts as 0) and pieces that equal
/// the end of the string (no text, number 0) are dropped from the end.
fn comparison_pieces(part: &str) -> Vec<(&str, &str)> {
    let mut pieces = Vec::new();
    let mut rest = part;
    while !rest.is_empty() {
        let (text, after) = rest.split_at(rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len()));
        let (digits, after) = after.split_at(after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len()));
        pieces.push((text, digits.trim_start_matches('0')));
        rest = after;
    }
    while pieces.last() == Some(&("", "")) {
        pieces.pop();
    }
    pieces
}

impl serde::Serialize for DebVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for DebVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Orders two version strings as dpkg would, total over all strings so it can serve as a sort
/// key or SQLite collation: invalid strings sort before every valid one, bytewise among
/// themselves.
pub fn compare_version_strs(a: &str, b: &str) -> Ordering {
    match (a.parse::<DebVersion>(), b.parse::<DebVersion>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Err(_), Ok(_)) => Ordering::Less,
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// A relation of Debian's dependency syntax. The ambiguous old `<` and `>` are not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `>=`
    Ge,
    /// `>>`
    Gt,
    /// `=`
    Eq,
    /// `<=`
    Le,
    /// `<<`
    Lt,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Ge, Op::Gt, Op::Eq, Op::Le, Op::Lt];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">>",
            Op::Eq => "=",
            Op::Le => "<=",
            Op::Lt => "<<",
        }
    }

    /// Whether `candidate.cmp(bound) == ord` satisfies this relation.
    pub fn accepts(self, ord: Ordering) -> bool {
        match self {
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Le => ord != Ordering::Greater,
            Op::Lt => ord == Ordering::Less,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<op><version>`, as in `?version=>=3.0.20-1`: which versions of a package qualify.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Constraint {
    pub op: Op,
    pub version: DebVersion,
}

const EXPECTED: &str = "expected <op><version> with <op> one of >=, >>, =, <=, <<";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("version constraint is empty: {EXPECTED}")]
    Empty,
    #[error("version constraint '{0}' has no operator: {EXPECTED}")]
    MissingOp(String),
    #[error("version constraint '{0}' has no version after the operator: {EXPECTED}")]
    MissingVersion(String),
    #[error(
        "operator '>' in version constraint '{0}' is ambiguous: use '>>' for strictly greater or '>=' for greater or equal"
    )]
    BareGreater(String),
    #[error(
        "operator '<' in version constraint '{0}' is ambiguous: use '<<' for strictly less or '<=' for less or equal"
    )]
    BareLess(String),
    #[error("operator '{op}' in version constraint '{input}' is not a Debian operator: {hint}")]
    UnknownOp { op: String, input: String, hint: &'static str },
    #[error("version constraint '{input}': {source}")]
    Version { input: String, source: VersionError },
}

impl Constraint {
    pub fn new(op: Op, version: DebVersion) -> Self {
        Self { op, version }
    }

    pub fn satisfied_by(&self, v: &DebVersion) -> bool {
        self.op.accepts(v.cmp(&self.version))
    }
}

impl FromStr for Constraint {
    type Err = ConstraintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if input.is_empty() {
            return Err(ConstraintError::Empty);
        }
        let op_len = input.find(|c: char| !"<>=!".contains(c)).unwrap_or(input.len());
        let (op_text, version_text) = input.split_at(op_len);
        let op = parse_op(op_text, input)?;
        let version_text = version_text.trim_start();
        if version_text.is_empty() {
            return Err(ConstraintError::MissingVersion(shorten(input)));
        }
        let version =
            version_text.parse().map_err(|source| ConstraintError::Version { input: shorten(input), source })?;
        Ok(Self { op, version })
    }
}

/// The operator `op` that the constraint `input` starts with.
fn parse_op(op: &str, input: &str) -> Result<Op, ConstraintError> {
    if let Some(found) = Op::ALL.into_iter().find(|o| o.as_str() == op) {
        return Ok(found);
    }
    let unknown = |hint| ConstraintError::UnknownOp { op: op.to_string(), input: shorten(input), hint };
    Err(match op {
        "" => ConstraintError::MissingOp(shorten(input)),
        ">" => ConstraintError::BareGreater(shorten(input)),
        "<" => ConstraintError::BareLess(shorten(input)),
        "==" => unknown("use '=' for equal"),
        "=>" => unknown("use '>=' for greater or equal"),
        "=<" => unknown("use '<=' for less or equal"),
        "!=" => unknown("there is no 'not equal'"),
        _ => unknown("use one of >=, >>, =, <=, <<"),
    })
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op, self.version)
    }
}

impl serde::Serialize for Constraint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn v(s: &str) -> DebVersion {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn hash_of(v: &DebVersion) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    /// Each list is strictly increasing.
    fn assert_increasing(list: &[&str]) {
        for pair in list.windows(2) {
            let (a, b) = (v(pair[0]), v(pair[1]));
            assert_eq!(a.cmp(&b), Ordering::Less, "{a} < {b}");
            assert_eq!(b.cmp(&a), Ordering::Greater, "{b} > {a}");
            assert_ne!(a, b);
        }
    }

    #[test]
    fn tilde_sorts_before_everything_even_the_end() {
        // The example of Debian policy 5.6.12.
        assert_increasing(&["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a"]);
        assert_increasing(&["1.0~rc1-1", "1.0-1", "1.0-1+b1"]);
        assert_increasing(&["2.36.1-8~bpo11+1", "2.36.1-8", "2.36.1-8+deb12u1"]);
    }

    #[test]
    fn epoch_outweighs_everything_else() {
        assert_increasing(&["9999.9-99", "1:0.1-1", "1:0.2", "2:0~0"]);
    }

    #[test]
    fn revision_decides_only_when_upstream_is_equal() {
        assert_increasing(&["1.0-1", "1.0-2", "1.0-10", "1.0.1-1", "1.1-0"]);
        assert_increasing(&["2025a-0+deb12u1", "2025b-0+deb12u1", "2025b-0+deb12u2"]);
    }

    #[test]
    fn letters_sort_before_non_letters_and_numbers_compare_numerically() {
        assert_increasing(&["1.0", "1.0A", "1.0a", "1.0+", "1.0.", "1.0.1"]);
        assert_increasing(&["1.9", "1.10", "1.010a"]);
        assert_increasing(&["1.0-1", "1.0-1ubuntu1", "1.0-1+b1", "1.0-1.1"]);
    }

    #[test]
    fn dpkg_equal_versions_are_equal_and_hash_alike_but_keep_their_text() {
        for group in [
            &["1.0", "0:1.0", "1.0-0", "1.00", "0:01.0-00"][..],
            &["1a", "1a0", "1a-0", "1a00-0"],
            &["1~", "1~0", "1~-0"],
            &["1.0.", "1.0.0", "1.0.00-0"],
            &["1-a", "1-a0", "1-a000"],
            &["2:1.2.3-1", "2:1.2.03-1", "02:1.2.3-01"],
        ] {
            for a in group {
                for b in group {
                    assert_eq!(v(a), v(b), "{a} = {b}");
                    assert_eq!(hash_of(&v(a)), hash_of(&v(b)), "{a} and {b} hash alike");
                }
            }
            assert_eq!(v(group[1]).to_string(), group[1]);
        }
        assert_ne!(v("1.0"), v("1.0.0"));
        assert_ne!(v("1.0"), v("1.0-1"));
    }

    #[test]
    fn parts_are_split_at_the_first_colon_and_the_last_hyphen() {
        let x = v("1:2.3-4:5-6-7+b1");
        assert_eq!((x.epoch(), x.upstream(), x.revision()), (1, "2.3-4:5-6", Some("7+b1")));
        let x = v("2025b");
        assert_eq!((x.epoch(), x.upstream(), x.revision()), (0, "2025b", None));
        assert_eq!(x.as_str(), "2025b");
    }

    #[test]
    fn invalid_versions_are_rejected_with_the_reason_and_the_string() {
        let cases = [
            ("", "invalid Debian version '': it is empty"),
            ("1.0 1", "invalid Debian version '1.0 1': it contains whitespace"),
            (":1.0", "invalid Debian version ':1.0': the epoch before ':' is empty"),
            ("a:1.0", "invalid Debian version 'a:1.0': the epoch before ':' is not a number"),
            ("-1:1.0", "invalid Debian version '-1:1.0': the epoch before ':' is not a number"),
            ("2147483648:1", "invalid Debian version '2147483648:1': the epoch is larger than 2147483647"),
            ("99999999999:1", "invalid Debian version '99999999999:1': the epoch is larger than 2147483647"),
            ("1:", "invalid Debian version '1:': nothing follows the epoch's ':'"),
            ("-1", "invalid Debian version '-1': the upstream version before the last '-' is empty"),
            ("1:-1", "invalid Debian version '1:-1': the upstream version before the last '-' is empty"),
            ("1.0-", "invalid Debian version '1.0-': the revision after the last '-' is empty"),
            ("abc", "invalid Debian version 'abc': the upstream version does not start with a digit"),
            ("~1", "invalid Debian version '~1': the upstream version does not start with a digit"),
            (
                "1.0_rc1-1",
                "invalid Debian version '1.0_rc1-1': character '_' is not allowed in the upstream version (only A-Z a-z 0-9 . + ~ - :)",
            ),
            (
                "1.ü",
                "invalid Debian version '1.ü': character 'ü' is not allowed in the upstream version (only A-Z a-z 0-9 . + ~ - :)",
            ),
            (
                "1.0-1_2",
                "invalid Debian version '1.0-1_2': character '_' is not allowed in the revision (only A-Z a-z 0-9 . + ~)",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<DebVersion>().unwrap_err();
            assert_eq!(err.to_string(), message, "{input:?}");
        }
        let long = format!("1.{}", "0".repeat(300));
        let err = long.parse::<DebVersion>().unwrap_err();
        assert_eq!(err.fault, VersionFault::TooLong);
        assert_eq!(err.input, format!("1.{}…", "0".repeat(98)));
        assert_eq!(
            err.to_string(),
            format!("invalid Debian version '1.{}…': it is longer than 256 bytes", "0".repeat(98))
        );
    }

    #[test]
    fn serializes_as_the_original_string_and_deserializes_with_validation() {
        assert_eq!(serde_json::to_string(&v("0:1.00-0")).unwrap(), r#""0:1.00-0""#);
        assert_eq!(serde_json::from_str::<DebVersion>(r#""1:2.0~rc1-3""#).unwrap().as_str(), "1:2.0~rc1-3");
        let err = serde_json::from_str::<DebVersion>(r#""1.0-""#).unwrap_err();
        assert_eq!(err.to_string(), "invalid Debian version '1.0-': the revision after the last '-' is empty");
        let c: Constraint = ">= 1.0-1".parse().unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"">=1.0-1""#);
    }

    #[test]
    fn string_comparison_is_total_with_invalid_strings_first() {
        assert_eq!(compare_version_strs("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(compare_version_strs("1:0.1", "2.0"), Ordering::Greater);
        assert_eq!(compare_version_strs("1.0", "0:1.0-0"), Ordering::Equal);
        assert_eq!(compare_version_strs("abc", "0~"), Ordering::Less);
        assert_eq!(compare_version_strs("0~", "abc"), Ordering::Greater);
        assert_eq!(compare_version_strs("abc", "abd"), Ordering::Less);
        assert_eq!(compare_version_strs("", ""), Ordering::Equal);
    }

    #[test]
    fn constraints_parse_with_every_operator_and_optional_spaces() {
        for (input, op, version, shown) in [
            (">=1.2-3", Op::Ge, "1.2-3", ">=1.2-3"),
            (">>1.2", Op::Gt, "1.2", ">>1.2"),
            ("=1:1.2~rc1", Op::Eq, "1:1.2~rc1", "=1:1.2~rc1"),
            ("<=2025b-0+deb12u1", Op::Le, "2025b-0+deb12u1", "<=2025b-0+deb12u1"),
            ("<<3.0.20", Op::Lt, "3.0.20", "<<3.0.20"),
            ("  >= 3.0.20-1 ", Op::Ge, "3.0.20-1", ">=3.0.20-1"),
        ] {
            let c: Constraint = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((c.op, c.version.as_str()), (op, version), "{input}");
            assert_eq!(c.to_string(), shown);
            assert_eq!(c.to_string().parse::<Constraint>().unwrap(), c);
        }
    }

    #[test]
    fn constraint_errors_say_what_is_wrong() {
        let expected = "expected <op><version> with <op> one of >=, >>, =, <=, <<";
        let cases = [
            (String::new(), format!("version constraint is empty: {expected}")),
            ("   ".into(), format!("version constraint is empty: {expected}")),
            ("1.2".into(), format!("version constraint '1.2' has no operator: {expected}")),
            (">=".into(), format!("version constraint '>=' has no version after the operator: {expected}")),
            ("<< ".into(), format!("version constraint '<<' has no version after the operator: {expected}")),
            (
                ">1.2".into(),
                "operator '>' in version constraint '>1.2' is ambiguous: use '>>' for strictly greater or '>=' for greater or equal".into(),
            ),
            (
                "<1.2".into(),
                "operator '<' in version constraint '<1.2' is ambiguous: use '<<' for strictly less or '<=' for less or equal".into(),
            ),
            ("==1.2".into(), "operator '==' in version constraint '==1.2' is not a Debian operator: use '=' for equal".into()),
            (
                "=>1.2".into(),
                "operator '=>' in version constraint '=>1.2' is not a Debian operator: use '>=' for greater or equal".into(),
            ),
            (
                "=<1.2".into(),
                "operator '=<' in version constraint '=<1.2' is not a Debian operator: use '<=' for less or equal".into(),
            ),
            ("!=1.2".into(), "operator '!=' in version constraint '!=1.2' is not a Debian operator: there is no 'not equal'".into()),
            (
                ">>=1.2".into(),
                "operator '>>=' in version constraint '>>=1.2' is not a Debian operator: use one of >=, >>, =, <=, <<".into(),
            ),
            (
                ">=1.2-".into(),
                "version constraint '>=1.2-': invalid Debian version '1.2-': the revision after the last '-' is empty".into(),
            ),
            (
                ">=openssl".into(),
                "version constraint '>=openssl': invalid Debian version 'openssl': the upstream version does not start with a digit"
                    .into(),
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<Constraint>().unwrap_err();
            assert_eq!(err.to_string(), message, "{input:?}");
        }
    }

    #[test]
    fn constraints_select_exactly_the_right_versions() {
        let versions = ["3.0.19-1", "3.0.20~rc1-1", "3.0.20-1", "0:3.0.20-01", "3.0.20-1+deb12u1", "1:1.0"];
        let matching = |c: &str| -> Vec<&str> {
            let c: Constraint = c.parse().unwrap();
            versions.iter().copied().filter(|x| c.satisfied_by(&v(x))).collect()
        };
        assert_eq!(matching(">=3.0.20-1"), ["3.0.20-1", "0:3.0.20-01", "3.0.20-1+deb12u1", "1:1.0"]);
        assert_eq!(matching(">>3.0.20-1"), ["3.0.20-1+deb12u1", "1:1.0"]);
        assert_eq!(matching("=3.0.20-1"), ["3.0.20-1", "0:3.0.20-01"]);
        assert_eq!(matching("<=3.0.20-1"), ["3.0.19-1", "3.0.20~rc1-1", "3.0.20-1", "0:3.0.20-01"]);
        assert_eq!(matching("<<3.0.20-1"), ["3.0.19-1", "3.0.20~rc1-1"]);
    }
}
