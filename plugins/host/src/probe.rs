//! Probing a library in a child process before the host loads it
//! ([`ProbeCommand`], [`child_main`]).
//!
//! The declaration is read from the file without running plugin code, but
//! the system loader itself trusts the file: a corrupt dynamic section can
//! crash it (a segfault inside `dlopen`, before any plugin code runs), and
//! nothing in-process can contain that. So a host configured with a probe
//! command first has a child process load the same verified image (passed
//! as a descriptor, so it is the same bytes) and run its registration. If
//! the child crashes, hangs or fails, the library is refused with what
//! happened; the host is untouched.
//!
//! The child is a program that calls [`crate::probe_child::main`]: the
//! `ami` binary does when its first argument is [`PROBE_ARG`]. A host without a probe command
//! (a library embedding the host) loads in-process, as before.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::PluginError;
use crate::image::Image;

/// The first argument that makes the `ami` binary a probe child.
pub const PROBE_ARG: &str = "__ami-probe-plugin";

/// How to start a probe child: a program and its leading arguments; the
/// host appends the descriptor number, the library's path (for messages)
/// and whether `panic = "abort"` is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCommand {
    /// The program (usually this executable).
    pub program: PathBuf,
    /// Arguments before the host's.
    pub args: Vec<OsString>,
    /// How long the child may take before the library is refused.
    pub timeout: Duration,
}

impl ProbeCommand {
    /// This executable with [`PROBE_ARG`] (for binaries whose `main` calls
    /// [`crate::probe_child::main_if_asked`]), with a 60 s timeout.
    pub fn current_exe() -> std::io::Result<ProbeCommand> {
        Ok(ProbeCommand { program: std::env::current_exe()?, args: vec![PROBE_ARG.into()], timeout: Duration::from_secs(60) })
    }
}

/// The name of a signal that kills processes, for messages
/// (`signal 11, SIGSEGV`).
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig}, {name}")
}

/// Has a child load `image` (the library at `path`); `Ok` when it did.
pub(crate) fn probe(cmd: &ProbeCommand, image: &Image, path: &Path, allow_panic_abort: bool) -> Result<(), PluginError> {
    let fd = image.raw_fd();
    let refused = |reason: String| PluginError::Probe { path: path.to_path_buf(), reason };
    let mut command = Command::new(&cmd.program);
    command.args(&cmd.args).arg(fd.to_string()).arg(path).arg(if allow_panic_abort { "1" } else { "0" });
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: runs in the forked child before exec; fcntl is
    // async-signal-safe and only clears close-on-exec on the image's
    // descriptor, so the child inherits it.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| refused(format!("cannot start the probe process {}: {e}", cmd.program.display())))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(cmd.timeout) {
        Ok(out) => out,
        Err(_) => {
            // SAFETY: kill(2) on the child's pid, which is not reaped yet
            // (the waiter has not returned), so it cannot name another process.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = waiter.join();
            return Err(refused(format!("loading it in a child process did not finish within {} s", cmd.timeout.as_secs_f64())));
        }
    };
    let _ = waiter.join();
    let output = output.map_err(|e| refused(format!("the probe process failed: {e}")))?;
    if let Some(sig) = output.status.signal() {
        return Err(refused(format!(
            "loading it in a child process crashed the child ({}): the file is corrupt or not a library this system can load",
            signal_name(sig)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.lines().any(|l| l.starts_with("ok ")) {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    // The child names the library the same way: keep only what it says of it.
    let prefix = format!("plugin {}: ", path.display());
    let said = last.strip_prefix(&prefix).unwrap_or(last);
    Err(refused(if said.is_empty() { format!("the probe process exited with {}", output.status) } else { said.to_string() }))
}
