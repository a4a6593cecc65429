//! The checkpoint file: the position of the last event the sink confirmed.
//!
//! Written atomically: a temporary file in the same directory, fsync, rename over the old one,
//! fsync of the directory. A crash at any point leaves either the old or the new position.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A checkpoint file.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    tmp: PathBuf,
}

impl Checkpoint {
    /// A checkpoint kept at `path` (not read or written yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        Self {
            path,
            tmp: tmp.into(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored position, `None` if there is no checkpoint yet. A file that does not hold a
    /// position (`<ms>-<seq>`) is an error, not a silent restart from scratch.
    pub fn load(&self) -> std::io::Result<Option<String>> {
        match fs::read_to_string(&self.path) {
            Ok(text) => {
                let pos = text.trim();
                if is_position(pos) {
                    Ok(Some(pos.to_owned()))
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "checkpoint {} does not hold a position (<ms>-<seq>): {:?}",
                            self.path.display(),
                            pos.chars().take(64).collect::<String>()
                        ),
                    ))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `position` atomically and durably.
    pub fn save(&self, position: &str) -> std::io::Result<()> {
        let mut f = File::create(&self.tmp)?;
        f.write_all(position.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.path)?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
}

/// `<ms>-<seq>` with both parts decimal.
pub fn is_position(s: &str) -> bool {
    parse_position(s).is_some()
}

/// The two parts of a `<ms>-<seq>` position.
pub fn parse_position(s: &str) -> Option<(u64, u64)> {
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path().join("cp"));
        assert_eq!(cp.load().unwrap(), None);
        cp.save("1700000000000-3").unwrap();
        assert_eq!(cp.load().unwrap().as_deref(), Some("1700000000000-3"));
        cp.save("1700000000001-0").unwrap();
        assert_eq!(cp.load().unwrap().as_deref(), Some("1700000000001-0"));
        assert!(!dir.path().join("cp.tmp").exists());
        fs::write(dir.path().join("cp"), "garbage").unwrap();
        assert!(cp.load().is_err());
    }
}
