//! The probe child's side ([`main`]): what a process started by the host's
//! [`ProbeCommand`](crate::ProbeCommand) does with the library image it is
//! given (see [`crate::probe`]).

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::host::{PluginHost, PluginHostConfig};
use crate::probe::PROBE_ARG;

/// Whether `args` (the process's, program name included) ask for a probe
/// child; if so, runs it and returns its exit status.
pub fn main_if_asked(args: &[OsString]) -> Option<i32> {
    (args.get(1).map(|a| a == PROBE_ARG) == Some(true)).then(|| main(&args[2..]))
}

/// The probe child: `FD PATH ALLOW_ABORT`. Reads the image from descriptor
/// `FD`, loads and registers it as the host would, creates one instance of
/// each module with the default configuration, and prints `ok NAME`.
/// Exit status 0 when it loaded, 2 with the error on stderr when it did not.
pub fn main(args: &[OsString]) -> i32 {
    let fd = args.first().and_then(|a| a.to_str()).and_then(|a| a.parse::<i32>().ok());
    let (Some(fd), Some(path)) = (fd, args.get(1)) else {
        eprintln!("{PROBE_ARG}: expected FD PATH ALLOW_ABORT");
        return 2;
    };
    let allow_panic_abort = args.get(2).map(|a| a == "1") == Some(true);
    // Opened anew (not read through the inherited descriptor, whose offset
    // the host left at the end).
    let mut bytes = Vec::new();
    if let Err(e) = File::open(format!("/proc/self/fd/{fd}")).and_then(|mut f| f.read_to_end(&mut bytes)) {
        eprintln!("cannot read the image: {e}");
        return 2;
    }
    let path = Path::new(path);
    let mut host = PluginHost::new(PluginHostConfig { allow_panic_abort, ..Default::default() });
    match host.load_bytes(path, path, &bytes) {
        Ok(p) => {
            // What `ami plugin inspect` does next in the host: one instance
            // of each module with the default configuration, asked its
            // widths (errors are the module's to report later).
            for m in p.modules() {
                let _ = crate::plugin::probe_dims(&p, &m.name, "{}");
            }
            // And registers its modules as agent-file implementations.
            if let Err(e) = crate::register::register_plugin(&mut ami_config::Registry::new(), &p) {
                eprintln!("plugin {}: {e}", path.display());
                return 2;
            }
            println!("ok {}", p.name());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}
