//! The panic guard every shim between the host and plugin code runs in.

use crate::types::{ErrBuf, Error, Status};

/// Runs `f`, turning an `Err` into [`Status::ERROR`] and a panic into
/// [`Status::PANICKED`], with the message written into `err`. Every shim
/// that [`declare_plugin!`](crate::declare_plugin) generates goes through here.
///
/// # Safety
/// `err` is null or a valid [`ErrBuf`].
#[inline(always)]
pub unsafe fn guard(err: *mut ErrBuf, f: impl FnOnce() -> Result<(), Error>) -> Status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => Status::OK,
        Ok(Err(e)) => {
            // SAFETY: forwarded from the caller.
            unsafe { ErrBuf::write(err, &e.0) };
            Status::ERROR
        }
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_string()
            };
            // Dropping a payload can itself panic (a payload with a panicking
            // Drop); forget it instead: a few bytes leak once per poisoning.
            std::mem::forget(payload);
            // SAFETY: forwarded from the caller.
            unsafe { ErrBuf::write(err, &msg) };
            Status::PANICKED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_contains_panics_and_errors() {
        let mut mem = [0u8; 64];
        let mut e = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
        // SAFETY: `e` is valid.
        let st = unsafe { guard(&mut e, || panic!("boom {}", 7)) };
        assert_eq!(st, Status::PANICKED);
        assert_eq!(&mem[..e.len], b"boom 7");
        // SAFETY: `e` is valid.
        let st = unsafe { guard(&mut e, || Err("bad".into())) };
        assert_eq!(st, Status::ERROR);
        assert_eq!(&mem[..e.len], b"bad");
    }
}
