//! The Python child: started with the embedded server, spoken to in
//! frames over its stdin and stdout, watched for exits and hangs, and
//! never left running (dropping a [`Server`] ends it; the child also
//! exits when its stdin closes, and a watchdog thread in it exits when ami
//! is gone, even while a step hangs).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::GymError;

/// The server script, embedded so `ami` needs no files beside itself.
pub const SERVER: &str = include_str!("server.py");

const STDERR_TAIL: usize = 8 * 1024;

/// A reply: `O` with its payload, or `E` with JSON.
enum Frame {
    Ok(Vec<u8>),
    Err(Vec<u8>),
}

/// Kills the child when a call's deadline passes: the blocked read then
/// ends, and the call reports a timeout. It polls a deadline the caller
/// sets with two atomic stores, so an answered call costs no wake-up.
struct Watchdog {
    /// Deadline, in nanoseconds after `epoch`; 0: none.
    deadline: AtomicU64,
    fired: AtomicBool,
    stop: AtomicBool,
    epoch: Instant,
    child: Mutex<Option<Child>>,
}

impl Watchdog {
    fn arm(&self, timeout: Duration) {
        let at = (self.epoch.elapsed() + timeout).as_nanos().min(u128::from(u64::MAX)) as u64;
        self.deadline.store(at.max(1), Ordering::Release);
    }
    fn disarm(&self) {
        self.deadline.store(0, Ordering::Release);
    }
    fn run(&self) {
        while !self.stop.load(Ordering::Acquire) {
            let at = self.deadline.load(Ordering::Acquire);
            // Only the deadline seen here may fire: a call that ended
            // meanwhile (or armed a new one) is left alone.
            if at != 0
                && self.epoch.elapsed().as_nanos() >= u128::from(at)
                && self.deadline.compare_exchange(at, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
            {
                self.fired.store(true, Ordering::Release);
                if let Some(child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    kill_group(child);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One Python process running the server.
pub struct Server {
    id: String,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    watchdog: Arc<Watchdog>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    out: Vec<u8>,
    /// A request was sent and its reply not read yet.
    pending: bool,
}

/// A Python exception reported by the server.
#[derive(Debug, serde::Deserialize)]
pub struct Raised {
    /// What failed: `import`, `unknown_id`, `bad_kwargs`, `make`, `space`,
    /// `reset`, `step`, `protocol`.
    pub kind: String,
    /// The exception, `Type: message`.
    pub message: String,
    /// Python's traceback.
    #[serde(default)]
    pub traceback: String,
}

impl Server {
    /// Starts `python` with the server, for environment `id` (named in
    /// errors), with `env` added to its environment.
    pub fn start(python: &Path, id: &str, env: &[(String, String)]) -> Result<Self, GymError> {
        let mut child = Command::new(python)
            .process_group(0)
            // Pinned only when this call asks (GymConfig::cpu), never by
            // a variable ami itself inherited.
            .env_remove("AMI_GYM_CPU")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-u")
            .arg("-c")
            .arg(SERVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PYTHONWARNINGS", "ignore")
            .spawn()
            .map_err(|e| GymError::PythonMissing { id: id.into(), python: python.into(), reason: e.to_string() })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("stdout is piped"));
        let mut err = child.stderr.take().expect("stderr is piped");
        let thread_err = |e: std::io::Error| GymError::PythonMissing { id: id.into(), python: python.into(), reason: format!("cannot start a thread: {e}") };
        let watchdog = Arc::new(Watchdog {
            deadline: AtomicU64::new(0),
            fired: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            epoch: Instant::now(),
            child: Mutex::new(Some(child)),
        });
        let w = watchdog.clone();
        if let Err(e) = std::thread::Builder::new().name(format!("gym:{id} watchdog")).spawn(move || w.run()) {
            if let Some(mut child) = watchdog.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
                kill_group(&mut child);
                let _ = child.wait();
            }
            return Err(thread_err(e));
        }
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let tail = stderr.clone();
        let label = id.to_string();
        std::thread::Builder::new()
            .name(format!("gym:{id} stderr"))
            .spawn(move || {
                let mut lines = BufReader::new(&mut err);
                let mut line = Vec::new();
                while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    tracing::debug!(target: "ami_gym", "gym:{label}: {}", String::from_utf8_lossy(&line).trim_end());
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    t.extend(line.iter());
                    let over = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..over);
                    line.clear();
                }
            })
            .map_err(|e| {
                watchdog.stop.store(true, Ordering::Release);
                if let Some(mut child) = watchdog.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    kill_group(&mut child);
                    let _ = child.wait();
                }
                thread_err(e)
            })?;
        Ok(Self { id: id.into(), stdin, stdout, watchdog, stderr, out: Vec::new(), pending: false })
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.watchdog.child.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(Child::id)
    }

    /// Sends request `op` with `payload` and waits up to `timeout` (the
    /// write included) for the reply: its payload, or the server's
    /// exception.
    pub fn call(&mut self, op: u8, payload: &[u8], what: &'static str, timeout: Duration) -> Result<Result<Vec<u8>, Raised>, GymError> {
        self.send(op, payload, what, timeout)?;
        self.receive(what, timeout)
    }

    /// Sends request `op` without waiting for the reply (several servers
    /// then work at once; [`Server::receive`] collects each reply). A
    /// write that blocks longer than `timeout` (a stuck child with a full
    /// pipe) kills the child. Refused while a reply is pending.
    pub fn send(&mut self, op: u8, payload: &[u8], what: &'static str, timeout: Duration) -> Result<(), GymError> {
        if self.pending {
            return Err(self.protocol(what, "a request was sent before the previous reply was read".into()));
        }
        let Some(stdin) = self.stdin.as_mut() else { return Err(GymError::Gone { id: self.id.clone() }) };
        self.out.clear();
        self.out.push(op);
        self.out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.out.extend_from_slice(payload);
        self.watchdog.arm(timeout);
        let written = stdin.write_all(&self.out).and_then(|()| stdin.flush());
        self.watchdog.disarm();
        if written.is_err() {
            return Err(self.failed(what, timeout));
        }
        self.pending = true;
        Ok(())
    }

    /// Waits up to `timeout` for the reply to the request sent last.
    pub fn receive(&mut self, what: &'static str, timeout: Duration) -> Result<Result<Vec<u8>, Raised>, GymError> {
        if self.stdin.is_none() {
            return Err(GymError::Gone { id: self.id.clone() });
        }
        if !self.pending {
            return Err(self.protocol(what, "waiting for a reply to no request".into()));
        }
        self.watchdog.arm(timeout);
        let frame = read_frame(&mut self.stdout);
        self.watchdog.disarm();
        self.pending = false;
        if self.watchdog.fired.load(Ordering::Acquire) {
            return Err(self.failed(what, timeout));
        }
        match frame {
            Ok(Frame::Ok(p)) => Ok(Ok(p)),
            Ok(Frame::Err(p)) => match serde_json::from_slice::<Raised>(&p) {
                Ok(r) => Ok(Err(r)),
                Err(e) => Err(self.protocol(what, format!("an error reply that is not JSON ({e})"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(self.protocol(what, e.to_string())),
            Err(_) => Err(self.failed(what, timeout)),
        }
    }

    /// The error after a failed read or write: a timeout if the watchdog
    /// fired, else the child's exit.
    fn failed(&mut self, what: &'static str, timeout: Duration) -> GymError {
        if self.watchdog.fired.load(Ordering::Acquire) {
            self.kill();
            std::thread::sleep(Duration::from_millis(20));
            return GymError::Timeout { id: self.id.clone(), op: what, seconds: timeout.as_secs_f64(), stderr: self.stderr_tail() };
        }
        self.exited(what)
    }

    /// Kills the child after a reply that breaks the protocol (the stream
    /// cannot be trusted after it).
    pub fn protocol(&mut self, op: &'static str, message: String) -> GymError {
        self.kill();
        GymError::Protocol { id: self.id.clone(), op, message }
    }

    /// The error for a child that went away: waits briefly for its status.
    fn exited(&mut self, op: &'static str) -> GymError {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut status = String::from("still running; killed");
        if let Some(child) = self.watchdog.child.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => {
                        status = s.to_string();
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    _ => break,
                }
            }
        }
        self.kill();
        // Let the stderr thread drain what the child wrote last.
        std::thread::sleep(Duration::from_millis(20));
        GymError::Exited { id: self.id.clone(), op, status, stderr: self.stderr_tail() }
    }

    /// The last lines the child wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// Ends the child now and reaps it.
    fn kill(&mut self) {
        self.stdin = None;
        self.pending = false;
        if let Some(mut child) = self.watchdog.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            kill_group(&mut child);
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    /// Asks the server to close its environment and exit, waits up to a
    /// second, then kills it; in every case the child is reaped and the
    /// watchdog ends.
    fn drop(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            self.watchdog.arm(Duration::from_secs(1));
            let _ = stdin.write_all(&[b'Q', 0, 0, 0, 0]).and_then(|()| stdin.flush());
            self.watchdog.disarm();
        }
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let mut guard = self.watchdog.child.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut().map(Child::try_wait) {
                None | Some(Ok(Some(_))) => {
                    *guard = None;
                    break;
                }
                Some(Ok(None)) if Instant::now() < deadline => {
                    drop(guard);
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => {
                    drop(guard);
                    self.kill();
                    break;
                }
            }
        }
        self.watchdog.stop.store(true, Ordering::Release);
    }
}

/// Kills the child and everything in its process group (a forked helper
/// that holds the reply pipe open would otherwise keep a read blocked).
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    let _ = child.kill();
}

/// Largest reply accepted (a corrupt length must not allocate gigabytes).
const MAX_FRAME: usize = 1 << 28;

fn read_frame(r: &mut impl Read) -> std::io::Result<Frame> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head)?;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    if head[0] != b'O' && head[0] != b'E' {
        return Err(bad(format!("status byte {:#04x} (something other than the server wrote on its stdout)", head[0])));
    }
    let n = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if n > MAX_FRAME {
        return Err(bad(format!("a reply of {n} bytes")));
    }
    let mut payload = vec![0u8; n];
    r.read_exact(&mut payload)?;
    Ok(if head[0] == b'O' { Frame::Ok(payload) } else { Frame::Err(payload) })
}
