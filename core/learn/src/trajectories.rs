//! Trajectory datasets on disk: what a JEPA trains on (observations such
//! as images, the actions between them, and diagnostic quantities such as
//! true positions that the agent never sees), written as a stream and
//! read back with every record checked.
//!
//! # Format (little-endian)
//!
//! A header: the magic `AMITRJ01`, then `u32` observation width, `u32`
//! action width, `u32` diagnostic width, `u8` observation encoding (0:
//! `f32`; 1: `u8`, the value times 255 rounded, for images in `[0, 1]`),
//! `u32` length of a UTF-8 JSON description (the task and its settings)
//! and the description, then a CRC-32 of everything before it.
//!
//! Then one record per trajectory: `u32` number of steps `L` (at least 1),
//! `L + 1` observations, `L` actions (`f32`), `L + 1` diagnostics (`f32`),
//! and a CRC-32 of the record's bytes before it. A writer appends whole
//! records and flushes each, so a killed writer leaves at most one partial
//! record at the end: [`TrajectoryWriter::resume`] cuts it off and carries
//! on; a damaged record anywhere else is refused with its number and byte
//! offset.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ami_core::error::{CoreError, Result};
use ndarray::{Array2, ArrayView2};

/// The file's magic bytes.
pub const MAGIC: &[u8; 8] = b"AMITRJ01";
/// The most values a dimension may declare (refused before allocating).
pub const MAX_WIDTH: u32 = 1 << 20;
/// The most steps a record may declare.
pub const MAX_STEPS: u32 = 1 << 20;

/// How observations are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsEncoding {
    /// As `f32`.
    F32,
    /// As `u8`: `round(255 v)`, clamped (images in `[0, 1]`).
    U8,
}

/// What every trajectory in a file has.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryHeader {
    /// Observation width.
    pub obs_dim: usize,
    /// Action width.
    pub action_dim: usize,
    /// Diagnostic width (0: none).
    pub diag_dim: usize,
    /// How observations are stored.
    pub encoding: ObsEncoding,
    /// JSON describing the task and its settings.
    pub description: String,
}

/// One trajectory: `L + 1` observations and diagnostics, `L` actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// `[L + 1, obs_dim]`.
    pub observations: Array2<f32>,
    /// `[L, action_dim]`.
    pub actions: Array2<f32>,
    /// `[L + 1, diag_dim]`.
    pub diagnostics: Array2<f32>,
}

impl Trajectory {
    /// Steps (actions).
    pub fn len(&self) -> usize {
        self.actions.nrows()
    }
    /// Whether it has no step.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> CoreError + '_ {
    move |e| CoreError::Io { path: path.to_path_buf(), source: e }
}

fn corrupt(path: &Path, what: String) -> CoreError {
    CoreError::config("dataset", format!("{}: {what}", path.display()))
}

impl TrajectoryHeader {
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        for v in [self.obs_dim, self.action_dim, self.diag_dim] {
            b.extend_from_slice(&(v as u32).to_le_bytes());
        }
        b.push(match self.encoding {
            ObsEncoding::F32 => 0,
            ObsEncoding::U8 => 1,
        });
        b.extend_from_slice(&(self.description.len() as u32).to_le_bytes());
        b.extend_from_slice(self.description.as_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }
    fn check(&self) -> Result<()> {
        for (field, v) in [("obs_dim", self.obs_dim), ("action_dim", self.action_dim), ("diag_dim", self.diag_dim)] {
            if v as u64 > u64::from(MAX_WIDTH) || (field == "obs_dim" && v == 0) {
                return Err(CoreError::config(field, format!("must be 1..={MAX_WIDTH} (0 allowed for diag_dim), got {v}")));
            }
        }
        Ok(())
    }
    /// Reads and checks a header; returns it and its length in bytes.
    fn read(r: &mut impl Read, path: &Path) -> Result<(Self, u64)> {
        let mut fixed = [0u8; 8 + 12 + 1 + 4];
        r.read_exact(&mut fixed).map_err(|_| corrupt(path, "too short for a header (not a trajectory dataset?)".into()))?;
        if &fixed[..8] != MAGIC {
            return Err(corrupt(path, format!("not a trajectory dataset (magic {:?}, expected {:?})", String::from_utf8_lossy(&fixed[..8]), "AMITRJ01")));
        }
        let u = |i: usize| u32::from_le_bytes(fixed[i..i + 4].try_into().expect("4 bytes"));
        let (o, a, d) = (u(8), u(12), u(16));
        let encoding = match fixed[20] {
            0 => ObsEncoding::F32,
            1 => ObsEncoding::U8,
            e => return Err(corrupt(path, format!("unknown observation encoding {e}"))),
        };
        let n = u(21);
        if n > 1 << 20 || o == 0 || o > MAX_WIDTH || a > MAX_WIDTH || d > MAX_WIDTH {
            return Err(corrupt(path, format!("a header with widths {o}, {a}, {d} and a {n}-byte description is out of range")));
        }
        let mut desc = vec![0u8; n as usize];
        let mut crc = [0u8; 4];
        r.read_exact(&mut desc).and_then(|_| r.read_exact(&mut crc)).map_err(|_| corrupt(path, "the header is cut short".into()))?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&desc);
        if crc32fast::hash(&all) != u32::from_le_bytes(crc) {
            return Err(corrupt(path, "the header's checksum does not match (damaged file)".into()));
        }
        let description = String::from_utf8(desc).map_err(|_| corrupt(path, "the description is not UTF-8".into()))?;
        let h = Self { obs_dim: o as usize, action_dim: a as usize, diag_dim: d as usize, encoding, description };
        Ok((h, all.len() as u64 + 4))
    }
    fn record_len(&self, steps: usize) -> u64 {
        let obs = match self.encoding {
            ObsEncoding::F32 => 4,
            ObsEncoding::U8 => 1,
        };
        4 + ((steps + 1) * self.obs_dim * obs) as u64 + 4 * (steps * self.action_dim + (steps + 1) * self.diag_dim) as u64 + 4
    }
}

/// Appends trajectories to a dataset file (see the module docs).
pub struct TrajectoryWriter {
    path: PathBuf,
    header: TrajectoryHeader,
    out: BufWriter<File>,
    count: usize,
}

impl TrajectoryWriter {
    /// Creates (or truncates) `path` with `header`.
    pub fn create(path: &Path, header: TrajectoryHeader) -> Result<Self> {
        header.check()?;
        let file = File::create(path).map_err(io_err(path))?;
        let mut out = BufWriter::new(file);
        out.write_all(&header.bytes()).and_then(|_| out.flush()).map_err(io_err(path))?;
        Ok(Self { path: path.to_path_buf(), header, out, count: 0 })
    }

    /// Opens `path` to append more trajectories: its header must be
    /// `header`; every record is checked; a partial record at the end (a
    /// killed writer) is cut off. Returns the writer and the trajectories
    /// already there.
    pub fn resume(path: &Path, header: TrajectoryHeader) -> Result<Self> {
        let (found, records, good_end) = scan(path)?;
        if found != header {
            let shape = |h: &TrajectoryHeader| {
                format!("{} wide observations ({:?}), {} actions, {} diagnostics, {}", h.obs_dim, h.encoding, h.action_dim, h.diag_dim, h.description)
            };
            return Err(corrupt(path, format!("holds trajectories of another task or shape ({}), not ({}): use another file", shape(&found), shape(&header))));
        }
        let file = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        file.set_len(good_end).map_err(io_err(path))?;
        let mut file = file;
        file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        Ok(Self { path: path.to_path_buf(), header, out: BufWriter::new(file), count: records })
    }

    /// Trajectories in the file.
    pub fn count(&self) -> usize {
        self.count
    }
    /// The header.
    pub fn header(&self) -> &TrajectoryHeader {
        &self.header
    }

    /// Appends one trajectory (`L + 1` observations and diagnostics, `L`
    /// actions, `L >= 1`) and flushes it.
    pub fn append(&mut self, observations: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, diagnostics: ArrayView2<'_, f32>) -> Result<()> {
        let h = &self.header;
        let l = actions.nrows();
        if l == 0
            || l as u64 > u64::from(MAX_STEPS)
            || observations.dim() != (l + 1, h.obs_dim)
            || actions.ncols() != h.action_dim
            || diagnostics.dim() != (l + 1, h.diag_dim)
        {
            return Err(CoreError::shape(
                "TrajectoryWriter::append",
                format!("L + 1 observations of {}, L >= 1 actions of {}, L + 1 diagnostics of {}", h.obs_dim, h.action_dim, h.diag_dim),
                format!("{:?}, {:?}, {:?}", observations.shape(), actions.shape(), diagnostics.shape()),
            ));
        }
        let mut b = Vec::with_capacity(h.record_len(l) as usize);
        b.extend_from_slice(&(l as u32).to_le_bytes());
        match h.encoding {
            ObsEncoding::F32 => observations.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes())),
            ObsEncoding::U8 => observations.iter().for_each(|v| b.push((v * 255.0).round().clamp(0.0, 255.0) as u8)),
        }
        actions.iter().chain(diagnostics.iter()).for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(&b).and_then(|_| self.out.flush()).map_err(io_err(&self.path))?;
        self.count += 1;
        Ok(())
    }
}

/// Reads the header, checks every record, and returns the header, the
/// number of whole records and the byte offset after the last one. A
/// partial record at the end is not an error (the writer was killed); a
/// whole record whose checksum fails is.
fn scan(path: &Path) -> Result<(TrajectoryHeader, usize, u64)> {
    let mut r = BufReader::new(File::open(path).map_err(io_err(path))?);
    let total = r.get_ref().metadata().map_err(io_err(path))?.len();
    let (h, mut at) = TrajectoryHeader::read(&mut r, path)?;
    let mut n = 0;
    while at < total {
        match read_record(&mut r, &h, path, n, at, total)? {
            Some((_, len)) => {
                at += len;
                n += 1;
            }
            None => break,
        }
    }
    Ok((h, n, at))
}

/// One record at byte `at`: `None` if the file ends inside it.
fn read_record(r: &mut impl Read, h: &TrajectoryHeader, path: &Path, index: usize, at: u64, total: u64) -> Result<Option<(Trajectory, u64)>> {
    let mut lb = [0u8; 4];
    if total - at < 4 {
        return Ok(None);
    }
    r.read_exact(&mut lb).map_err(io_err(path))?;
    let l = u32::from_le_bytes(lb);
    if l == 0 || l > MAX_STEPS {
        return Err(corrupt(path, format!("trajectory {index} (byte {at}) declares {l} steps (1..={MAX_STEPS})")));
    }
    let len = h.record_len(l as usize);
    if total - at < len {
        return Ok(None);
    }
    let mut body = vec![0u8; (len - 8) as usize];
    let mut crc = [0u8; 4];
    r.read_exact(&mut body).and_then(|_| r.read_exact(&mut crc)).map_err(io_err(path))?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&lb);
    hasher.update(&body);
    if hasher.finalize() != u32::from_le_bytes(crc) {
        return Err(corrupt(path, format!("trajectory {index} (byte {at}) is damaged: its checksum does not match")));
    }
    let l = l as usize;
    let (no, na, nd) = ((l + 1) * h.obs_dim, l * h.action_dim, (l + 1) * h.diag_dim);
    let (obs, rest): (Vec<f32>, &[u8]) = match h.encoding {
        ObsEncoding::F32 => (body[..4 * no].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect(), &body[4 * no..]),
        ObsEncoding::U8 => (body[..no].iter().map(|&v| f32::from(v) / 255.0).collect(), &body[no..]),
    };
    let floats: Vec<f32> = rest.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect();
    let shape = |e: ndarray::ShapeError| corrupt(path, format!("trajectory {index}: {e}"));
    let t = Trajectory {
        observations: Array2::from_shape_vec((l + 1, h.obs_dim), obs).map_err(shape)?,
        actions: Array2::from_shape_vec((l, h.action_dim), floats[..na].to_vec()).map_err(shape)?,
        diagnostics: Array2::from_shape_vec((l + 1, h.diag_dim), floats[na..na + nd].to_vec()).map_err(shape)?,
    };
    Ok(Some((t, len)))
}

/// Reads a whole dataset: its header and trajectories, every record
/// checked. A partial record at the end is refused here (it is a file a
/// writer did not finish: resume the collection, or cut it).
pub fn read_trajectories(path: &Path) -> Result<(TrajectoryHeader, Vec<Trajectory>)> {
    let mut r = BufReader::new(File::open(path).map_err(io_err(path))?);
    let total = r.get_ref().metadata().map_err(io_err(path))?.len();
    let (h, mut at) = TrajectoryHeader::read(&mut r, path)?;
    let mut out = Vec::new();
    while at < total {
        match read_record(&mut r, &h, path, out.len(), at, total)? {
            Some((t, len)) => {
                at += len;
                out.push(t);
            }
            None => {
                return Err(corrupt(
                    path,
                    format!("ends inside trajectory {} (byte {at}): an unfinished collection (resume it to cut the rest off)", out.len()),
                ))
            }
        }
    }
    Ok((h, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn header(encoding: ObsEncoding) -> TrajectoryHeader {
        TrajectoryHeader { obs_dim: 6, action_dim: 2, diag_dim: 2, encoding, description: "{\"task\":\"test\"}".into() }
    }

    fn traj(l: usize, k: f32) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
        (
            Array2::from_shape_fn((l + 1, 6), |(i, j)| ((i * 6 + j) as f32 * 0.01 + k).fract()),
            Array2::from_shape_fn((l, 2), |(i, j)| i as f32 - j as f32 * k),
            Array2::from_shape_fn((l + 1, 2), |(i, j)| i as f32 * 0.5 + j as f32 + k),
        )
    }

    #[test]
    fn trajectories_round_trip_in_both_encodings() {
        let dir = tempfile::tempdir().unwrap();
        for enc in [ObsEncoding::F32, ObsEncoding::U8] {
            let p = dir.path().join(format!("{enc:?}.traj"));
            let mut w = TrajectoryWriter::create(&p, header(enc)).unwrap();
            let (a, b) = (traj(3, 0.1), traj(5, 0.7));
            w.append(a.0.view(), a.1.view(), a.2.view()).unwrap();
            w.append(b.0.view(), b.1.view(), b.2.view()).unwrap();
            drop(w);
            let (h, ts) = read_trajectories(&p).unwrap();
            assert_eq!(h, header(enc));
            assert_eq!(ts.len(), 2);
            assert_eq!(ts[1].actions, b.1);
            assert_eq!(ts[1].diagnostics, b.2);
            let tol = if enc == ObsEncoding::U8 { 0.5 / 255.0 + 1e-6 } else { 0.0 };
            let err = (&ts[0].observations - &a.0).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
            assert!(err <= tol, "{enc:?}: {err}");
        }
    }

    #[test]
    fn a_killed_collection_resumes_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.traj");
        let mut w = TrajectoryWriter::create(&p, header(ObsEncoding::U8)).unwrap();
        for k in 0..3 {
            let t = traj(4, k as f32 * 0.2);
            w.append(t.0.view(), t.1.view(), t.2.view()).unwrap();
        }
        drop(w);
        let whole = std::fs::metadata(&p).unwrap().len();
        // Killed in the middle of a fourth record: readers refuse the
        // unfinished file, resuming cuts the partial record off.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[4, 0, 0, 0, 9, 9, 9]).unwrap();
        drop(f);
        let err = read_trajectories(&p).unwrap_err().to_string();
        assert!(err.contains("ends inside trajectory 3") && err.contains("d.traj"), "{err}");
        let mut w = TrajectoryWriter::resume(&p, header(ObsEncoding::U8)).unwrap();
        assert_eq!(w.count(), 3);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), whole);
        let t = traj(2, 0.9);
        w.append(t.0.view(), t.1.view(), t.2.view()).unwrap();
        drop(w);
        assert_eq!(read_trajectories(&p).unwrap().1.len(), 4);
        // Another task's header: refused, the file untouched.
        let other = TrajectoryHeader { description: "{\"task\":\"other\"}".into(), ..header(ObsEncoding::U8) };
        let err = TrajectoryWriter::resume(&p, other).err().unwrap().to_string();
        assert!(err.contains("another task or shape"), "{err}");
        assert_eq!(read_trajectories(&p).unwrap().1.len(), 4);
        // A flipped byte inside the second record: refused by number.
        let mut bytes = std::fs::read(&p).unwrap();
        let header_len = header(ObsEncoding::U8).bytes().len();
        let rec = header(ObsEncoding::U8).record_len(4) as usize;
        bytes[header_len + rec + 20] ^= 0x40;
        std::fs::write(&p, &bytes).unwrap();
        let err = read_trajectories(&p).unwrap_err().to_string();
        assert!(err.contains("trajectory 1") && err.contains("damaged"), "{err}");
        assert!(TrajectoryWriter::resume(&p, header(ObsEncoding::U8)).err().unwrap().to_string().contains("trajectory 1"));
        // Not a dataset at all, and a header declaring absurd sizes.
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_trajectories(&p).unwrap_err().to_string().contains("too short"));
        let mut h = header(ObsEncoding::F32).bytes();
        h[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&p, &h).unwrap();
        assert!(read_trajectories(&p).unwrap_err().to_string().contains("out of range"));
    }

    #[test]
    fn bad_appends_are_refused_by_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TrajectoryWriter::create(&dir.path().join("x.traj"), header(ObsEncoding::F32)).unwrap();
        let t = traj(3, 0.0);
        let short = t.1.slice_axis(ndarray::Axis(0), ndarray::Slice::from(..2));
        let err = w.append(t.0.view(), short, t.2.view()).unwrap_err().to_string();
        assert!(err.contains("L + 1 observations"), "{err}");
        assert_eq!(w.count(), 0);
    }
}
