//! The verified image of a library ([`Image`]): the very bytes whose digest
//! and declaration were checked, held in a sealed anonymous file, so that
//! what the system loader maps is what the host checked.
//!
//! Hashing a path and then handing the same path to `dlopen` opens it twice:
//! a file swapped in between (a `rename` over it, or a write into it) is
//! loaded unverified. The host instead opens the library once, reads it,
//! checks those bytes, copies them into a `memfd` sealed against any further
//! change, and loads `/proc/self/fd/N`. The descriptor is never closed (the
//! library is never unloaded), so no later load can reuse its number.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// An anonymous, sealed file holding a library's checked bytes.
#[derive(Debug)]
pub(crate) struct Image {
    fd: OwnedFd,
}

impl Image {
    /// Copies `bytes` into a new sealed anonymous file.
    pub(crate) fn new(bytes: &[u8]) -> io::Result<Image> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags; it
        // returns a new descriptor or -1.
        let raw = unsafe { libc::memfd_create(c"ami-plugin".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just created and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        file.flush()?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor we own; F_ADD_SEALS takes an int.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Image { fd: OwnedFd::from(file) })
    }

    /// The descriptor.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The path the system loader opens: this process's descriptor.
    pub(crate) fn load_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.raw_fd()))
    }

    /// Keeps the descriptor open for the rest of the process (the library
    /// mapped from it is never unloaded, and a closed number could be
    /// reused by a later image of another library under the same path).
    pub(crate) fn keep(self) {
        std::mem::forget(self.fd);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn an_image_holds_the_bytes_and_cannot_be_changed() {
        let img = Image::new(b"checked bytes").unwrap();
        let mut back = Vec::new();
        File::open(img.load_path()).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, b"checked bytes");
        // Sealed: writing through a new descriptor is refused.
        let e = std::fs::OpenOptions::new().write(true).open(img.load_path()).and_then(|mut f| f.write_all(b"evil")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    }
}
