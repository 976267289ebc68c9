//! What a mirror keeps of a Release beyond the binary package indices (Contents, udebs,
//! translations, DEP-11, command-not-found, sources), as debmirror and aptly users choose it.
//! Everything else the Release lists is left out of the snapshot.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Translation languages to keep (`i18n/Translation-<lang>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Languages {
    /// Every language the Release lists.
    #[default]
    All,
    /// Only these (empty: none).
    Only(Vec<String>),
}

impl Languages {
    pub fn wants(&self, lang: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(langs) => langs.iter().any(|l| l == lang),
        }
    }
}

impl FromStr for Languages {
    type Err = String;

    /// `all`, `none`, or a comma-separated list such as `en,de,pt_BR`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(Self::All),
            "none" | "" => Ok(Self::Only(Vec::new())),
            list => {
                let langs: Vec<String> = list.split(',').map(|l| l.trim().to_string()).collect();
                for l in &langs {
                    let valid =
                        !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '-'));
                    if !valid || l == "all" || l == "none" {
                        return Err(format!(
                            "i18n language {l:?} is not valid: give 'all', 'none' or language codes separated by commas (en,de,pt_BR)"
                        ));
                    }
                }
                Ok(Self::Only(langs))
            }
        }
    }
}

impl fmt::Display for Languages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Only(l) if l.is_empty() => f.write_str("none"),
            Self::Only(l) => f.write_str(&l.join(",")),
        }
    }
}

impl Serialize for Languages {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Languages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The kinds of Release entries a mirror keeps. The defaults keep what asof has always
/// kept: binary indices, Contents and every translation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorScope {
    /// `<comp>/source/Sources*` and the source packages they list, `Contents-source`.
    pub sources: bool,
    /// `Contents-<arch>` files (top level, as Ubuntu has them, or per component, as Debian).
    pub contents: bool,
    /// `<comp>/debian-installer/binary-<arch>/Packages*` and the .udeb files they list,
    /// `Contents-udeb-<arch>`.
    pub udebs: bool,
    pub i18n: Languages,
    /// AppStream metadata: `<comp>/dep11/Components-<arch>.yml*` and icon tarballs.
    pub dep11: bool,
    /// Ubuntu's command-not-found data: `<comp>/cnf/Commands-<arch>*`.
    pub cnf: bool,
}

impl Default for MirrorScope {
    fn default() -> Self {
        Self { sources: false, contents: true, udebs: false, i18n: Languages::All, dep11: false, cnf: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_and_print_back() {
        for (text, parsed, shown) in [
            ("all", Languages::All, "all"),
            ("none", Languages::Only(vec![]), "none"),
            ("en", Languages::Only(vec!["en".into()]), "en"),
            ("en, de,pt_BR", Languages::Only(vec!["en".into(), "de".into(), "pt_BR".into()]), "en,de,pt_BR"),
        ] {
            let l: Languages = text.parse().unwrap();
            assert_eq!(l, parsed);
            assert_eq!(l.to_string(), shown);
        }
        assert_eq!(
            "en,,de".parse::<Languages>().unwrap_err(),
            "i18n language \"\" is not valid: give 'all', 'none' or language codes separated by commas (en,de,pt_BR)"
        );
        assert_eq!(
            "en,none".parse::<Languages>().unwrap_err(),
            "i18n language \"none\" is not valid: give 'all', 'none' or language codes separated by commas (en,de,pt_BR)"
        );
        assert!("../en".parse::<Languages>().is_err());
    }
}
