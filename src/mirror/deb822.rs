//! A streaming reader of deb822 paragraphs (Release, Packages, Sources): `Field: value`
//! lines, continuation lines starting with a space or tab, paragraphs separated by blank lines.

use std::io::BufRead;

#[derive(Debug, Default, Clone)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// The value of a field (case-insensitive name); multi-line values keep their newlines.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Deb822Error {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: &'static str },
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// Calls `f` for every paragraph; stops at the first error `f` returns.
pub fn for_each_paragraph<E: From<Deb822Error>>(
    mut reader: impl BufRead,
    mut f: impl FnMut(Paragraph) -> Result<(), E>,
) -> Result<(), E> {
    let mut para = Paragraph::default();
    let mut buf = String::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(Deb822Error::from)?;
        line_no += 1;
        let line = buf.trim_end_matches(['\n', '\r']);
        if n == 0 || line.trim().is_empty() {
            if !para.is_empty() {
                f(std::mem::take(&mut para))?;
            }
            if n == 0 {
                return Ok(());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = para.fields.last_mut() else {
                return Err(Deb822Error::Syntax { line: line_no, reason: "continuation line before any field" }.into());
            };
            value.push('\n');
            value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Deb822Error::Syntax {
                line: line_no,
                reason: "line is neither 'Field: value' nor a continuation",
            }
            .into());
        };
        para.fields.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// The signed text of a clearsigned message (RFC 9580 §7), dash-escapes undone, ending in
/// one line break as a Release file does; `None` if `msg` is not clearsigned.
pub fn clearsigned_text(msg: &str) -> Option<String> {
    let mut lines = msg.split_inclusive('\n');
    lines.by_ref().find(|l| l.trim_end() == "-----BEGIN PGP SIGNED MESSAGE-----")?;
    // Armor headers (`Hash: ...`) up to the first empty line.
    lines.by_ref().find(|l| l.trim_end().is_empty())?;
    let mut body = String::new();
    for line in lines {
        if line.trim_end() == "-----BEGIN PGP SIGNATURE-----" {
            // The line break before the signature belongs to the framework, not the text;
            // a Release file ends with one, so it is put back.
            if !body.ends_with('\n') {
                return None;
            }
            return Some(body);
        }
        body.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    None
}

/// Parses text holding exactly one paragraph (a Release file).
pub fn single_paragraph(text: &str) -> Result<Paragraph, Deb822Error> {
    let mut first = None;
    for_each_paragraph::<Deb822Error>(text.as_bytes(), |p| {
        first.get_or_insert(p);
        Ok(())
    })?;
    Ok(first.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs_and_continuations() {
        let text = "Package: a\nDescription: short\n long line\n .\n\nPackage: b\nFilename: pool/b.deb\n";
        let mut got = Vec::new();
        for_each_paragraph::<Deb822Error>(text.as_bytes(), |p| {
            got.push(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].get("description"), Some("short\nlong line\n."));
        assert_eq!(got[1].get("Filename"), Some("pool/b.deb"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(single_paragraph(" leading continuation\n").is_err());
        assert!(single_paragraph("no colon here\n").is_err());
    }
}
