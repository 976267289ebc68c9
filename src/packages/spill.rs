//! A list of parsed packages that keeps its first few thousand in memory and writes the
//! rest to an unlinked temporary file. The first publish of an archive lists every package
//! as new: 600,000 of them took ~450 MB as one vector of parsed rows (docs/benchmarks.md),
//! and indexing must stay within a bounded memory whatever the size of the archive.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::parse::{Listed, ParagraphHash};
use crate::domain::Digest;

/// Rows kept in memory before the rest goes to the file (a row is a few hundred bytes).
const IN_MEMORY: usize = 8192;

/// Packages in the order they were pushed.
pub struct PackageSpill {
    dir: PathBuf,
    memory: Vec<(ParagraphHash, Listed)>,
    file: Option<BufWriter<File>>,
    spilled: u64,
    /// The file's offset was moved by reading (the reader shares it): the next write must
    /// go back to its end first.
    read_since_write: bool,
    /// The first write that failed: reported when the rows are read, so that pushing
    /// stays infallible for the parser that produces them.
    failed: Option<io::Error>,
}

impl std::fmt::Debug for PackageSpill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageSpill").field("in_memory", &self.memory.len()).field("spilled", &self.spilled).finish()
    }
}

impl PackageSpill {
    /// `dir`: where the temporary file goes if the rows outgrow memory (the data
    /// directory's scratch space, on the same disk as the catalog).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            memory: Vec::new(),
            file: None,
            spilled: 0,
            read_since_write: false,
            failed: None,
        }
    }

    /// An empty list spilling where this one does.
    pub fn sibling(&self) -> Self {
        Self::new(&self.dir)
    }

    pub fn len(&self) -> u64 {
        self.memory.len() as u64 + self.spilled
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, paragraph: ParagraphHash, listed: Listed) {
        if self.memory.len() < IN_MEMORY {
            self.memory.push((paragraph, listed));
            return;
        }
        if self.failed.is_some() {
            return;
        }
        match self.write(paragraph, &listed) {
            Ok(()) => self.spilled += 1,
            Err(e) => self.failed = Some(e),
        }
    }

    fn write(&mut self, paragraph: ParagraphHash, l: &Listed) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(&self.dir)?));
        }
        let out = self.file.as_mut().expect("just made");
        if std::mem::take(&mut self.read_since_write) {
            out.get_mut().seek(SeekFrom::End(0))?;
        }
        out.write_all(&paragraph.to_le_bytes())?;
        out.write_all(&l.size.to_le_bytes())?;
        match &l.sha256 {
            Some(d) => {
                out.write_all(&[1])?;
                out.write_all(d.as_bytes())?;
            }
            None => out.write_all(&[0])?,
        }
        for s in [&l.name, &l.version, &l.source, &l.source_version, &l.filename] {
            let len = u32::try_from(s.len()).map_err(|_| io::Error::other("a field of over 4 GiB"))?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(s.as_bytes())?;
        }
        Ok(())
    }

    /// Every row, in the order pushed; can be called again (the file is read from its
    /// start each time). Fails if a row could not be written.
    pub fn rows(&mut self) -> io::Result<impl Iterator<Item = io::Result<(ParagraphHash, Listed)>> + '_> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let file = match &mut self.file {
            Some(out) => {
                out.flush()?;
                self.read_since_write = true;
                let mut file = out.get_ref().try_clone()?;
                file.seek(SeekFrom::Start(0))?;
                Some(BufReader::with_capacity(1 << 20, file))
            }
            None => None,
        };
        let spilled = (0..self.spilled).scan(file, |reader, _| reader.as_mut().map(read_row));
        Ok(self.memory.iter().cloned().map(Ok).chain(spilled))
    }
}

fn read_row(r: &mut impl Read) -> io::Result<(ParagraphHash, Listed)> {
    let paragraph = i64::from_le_bytes(read_array(r)?);
    let size = u64::from_le_bytes(read_array(r)?);
    let sha256 = match read_array::<1>(r)? {
        [0] => None,
        _ => Some(Digest::from_bytes(read_array(r)?)),
    };
    let mut text = || -> io::Result<String> {
        let len = u32::from_le_bytes(read_array(r)?) as usize;
        let mut bytes = vec![0; len];
        r.read_exact(&mut bytes)?;
        String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    };
    let (name, version, source, source_version, filename) = (text()?, text()?, text()?, text()?, text()?);
    Ok((paragraph, Listed { name, version, source, source_version, filename, size, sha256 }))
}

fn read_array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut a = [0; N];
    r.read_exact(&mut a)?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(i: u64) -> Listed {
        Listed {
            name: format!("pkg{i}"),
            version: format!("1.{i}-1"),
            source: if i.is_multiple_of(3) { format!("src{i}") } else { format!("pkg{i}") },
            source_version: format!("1.{i}-1"),
            filename: if i.is_multiple_of(5) {
                String::new()
            } else {
                format!("pool/main/p/pkg{i}/pkg{i}_1.{i}-1_amd64.deb")
            },
            size: i * 1000,
            sha256: i.is_multiple_of(2).then(|| Digest::of(&i.to_le_bytes())),
        }
    }

    #[test]
    fn rows_come_back_in_order_from_memory_and_file_and_can_be_read_again_after_more_pushes() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = PackageSpill::new(dir.path());
        let count = IN_MEMORY as u64 + 2500;
        for i in 0..count {
            spill.push(i as i64 * 7 - 3, listed(i));
        }
        assert_eq!(spill.len(), count);
        assert_eq!(spill.spilled, 2500, "the rows past the memory limit went to the file");
        for round in 0..2 {
            if round == 1 {
                spill.push(-1, listed(count));
            }
            let rows: Vec<_> = spill.rows().unwrap().collect::<io::Result<_>>().unwrap();
            let mut expected: Vec<_> = (0..count).map(|i| (i as i64 * 7 - 3, listed(i))).collect();
            if round == 1 {
                expected.push((-1, listed(count)));
            }
            assert_eq!(rows, expected);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the temporary file is unlinked");
    }

    #[test]
    fn a_failed_write_is_reported_when_the_rows_are_read() {
        let missing = Path::new("/nonexistent/asof-spill-test");
        let mut spill = PackageSpill::new(missing);
        for i in 0..=IN_MEMORY as u64 {
            spill.push(0, listed(i));
        }
        let e = spill.rows().err().expect("the temporary file could not be made");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
