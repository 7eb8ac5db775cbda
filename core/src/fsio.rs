//! Writing files so that nothing is lost on a crash or a full disk
//! ([`write_atomic`]).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};

/// The file a write to `path` must replace: `path` itself, or the file a
/// symbolic link at `path` points to (followed to the end), so the link
/// stays a link.
fn target_of(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match fs::read_link(&p) {
                Ok(t) if t.is_absolute() => p = t,
                Ok(t) => p = p.parent().unwrap_or(Path::new("")).join(t),
                Err(_) => return p,
            },
            _ => return p,
        }
    }
    p
}

/// Replaces the file at `path` with `bytes`, atomically: the bytes go to a
/// temporary file next to it (`.NAME.ami-tmp`, the same name every time,
/// so a save killed half-way leaves one file that the next save reuses),
/// which is flushed to disk and then renamed over the target. A failure (a
/// full disk) is an error naming `path`, leaves the previous file intact
/// and removes the temporary file. A symbolic link at `path` is followed
/// (the file it points to is replaced and the link kept), and an existing
/// file keeps its permissions.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| CoreError::Io { path: path.to_path_buf(), source };
    let target = target_of(path);
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = target.file_name().ok_or_else(|| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name")))?;
    let tmp = dir.join(format!(".{}.ami-tmp", name.to_string_lossy()));
    let permissions = fs::metadata(&target).ok().filter(|m| m.is_file()).map(|m| m.permissions());
    let written = (|| -> std::io::Result<()> {
        let mut f: File = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(p) = permissions {
            f.set_permissions(p)?;
        }
        drop(f);
        fs::rename(&tmp, &target)?;
        // The rename itself reaches the disk with the directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_write_keeps_the_mode_and_the_link_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.bin");
        fs::write(&real, b"old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink("real.bin", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        // A stale temporary file of a killed save is reused, not multiplied.
        fs::write(dir.path().join(".real.bin.ami-tmp"), b"half a save").unwrap();
        write_atomic(&real, b"newer").unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(fs::read(&real).unwrap(), b"newer");
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kept.bin");
        fs::write(&f, b"old").unwrap();
        // The temporary file's place is taken by a directory: the write fails.
        fs::create_dir(dir.path().join(".kept.bin.ami-tmp")).unwrap();
        let e = write_atomic(&f, b"new").unwrap_err();
        assert!(matches!(e, CoreError::Io { ref path, .. } if path == &f), "{e}");
        assert_eq!(fs::read(&f).unwrap(), b"old");
    }
}
