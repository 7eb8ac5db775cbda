//! Saving and loading ensembles as safetensors, in PyTorch's layout.
//!
//! The tensors are the `state_dict` of
//! `torch.nn.ModuleList([nn.Sequential(Linear, Act, Linear, Act, ..., Linear)] * K)`:
//! member `k`'s layer `l` is `"{k}.{2 l}.weight"` (`[out, in]`, f32) and
//! `"{k}.{2 l}.bias"` (`[out]`), so a PyTorch model saves straight into a
//! file ami loads and back. The normalisation is `norm.input_mean`,
//! `norm.input_std` (`[S + A]`), `norm.target_mean`, `norm.target_std`
//! (`[S]`); absent means the identity. String metadata: `format =
//! "ami.mlp_ensemble.v1"`, `state_dim`, `action_dim`, `activation` (`relu`
//! or `silu`), `probabilistic` (`true`/`false`), `min_logvar`, `max_logvar`;
//! widths missing from the metadata are read off the tensors.

use std::collections::HashMap;
use std::path::Path;

use ami_core::error::{CoreError, Result};
use ndarray::Array1;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::ensemble::Ensemble;
use crate::norm::Normalizer;
use crate::spec::{Activation, EnsembleSpec};

/// The metadata `format` value.
pub const FORMAT: &str = "ami.mlp_ensemble.v1";

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `ens` to `path` atomically (a temporary file renamed over it).
pub fn save(ens: &Ensemble, path: &Path) -> Result<()> {
    let spec = ens.spec();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for k in 0..spec.members {
        for l in 0..spec.layers() {
            let (w, b) = ens.layer(k, l);
            tensors.push((format!("{k}.{}.weight", 2 * l), w.shape().to_vec(), f32_bytes(&w.iter().copied().collect::<Vec<_>>())));
            tensors.push((format!("{k}.{}.bias", 2 * l), vec![b.len()], f32_bytes(&b.to_vec())));
        }
    }
    let n = ens.norm();
    for (name, v) in
        [("norm.input_mean", &n.input_mean), ("norm.input_std", &n.input_std), ("norm.target_mean", &n.target_mean), ("norm.target_std", &n.target_std)]
    {
        tensors.push((name.to_string(), vec![v.len()], f32_bytes(v.as_slice().expect("contiguous"))));
    }
    let meta = [
        ("format", FORMAT.to_string()),
        ("state_dim", spec.state_dim.to_string()),
        ("action_dim", spec.action_dim.to_string()),
        ("activation", spec.activation.name().to_string()),
        ("probabilistic", spec.probabilistic.to_string()),
        ("min_logvar", spec.min_logvar.to_string()),
        ("max_logvar", spec.max_logvar.to_string()),
    ];
    write_safetensors(path, &tensors, &meta)
}

/// Writes f32 tensors `(name, shape, little-endian bytes)` and string
/// metadata to `path` as safetensors, atomically
/// ([`ami_core::fsio::write_atomic`]: a crash or a full disk leaves the old
/// file or the new one, never half of one; its mode and a symbolic link to
/// it are kept). The bytes are a function of the
/// arguments alone: the header's metadata keys are written sorted (the
/// safetensors crate writes them in hash order), so the same weights give
/// the same file, byte for byte.
pub(crate) fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<u8>)], meta: &[(&str, String)]) -> Result<()> {
    let st = |e: String| CoreError::module("safetensors", e);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| st(e.to_string()))?)))
        .collect::<Result<_>>()?;
    let map: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let bytes = safetensors::serialize(views, Some(map)).map_err(|e| st(e.to_string()))?;
    let bytes = canonical_header(&bytes).map_err(st)?;
    ami_core::fsio::write_atomic(path, &bytes)
}

/// `bytes` (a serialized safetensors file) with its JSON header rewritten
/// with every object's keys sorted, padded with spaces to a multiple of 8
/// as the format asks. The tensors' data is untouched.
fn canonical_header(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let n = u64::from_le_bytes(bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or("no header length")?) as usize;
    let header = bytes.get(8..8 + n).ok_or("header past the end")?;
    let value: serde_json::Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let m: std::collections::BTreeMap<String, serde_json::Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(m.into_iter().collect())
            }
            other => other,
        }
    }
    let mut head = serde_json::to_vec(&sorted(value)).map_err(|e| e.to_string())?;
    head.resize(head.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + head.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Reads an ensemble written by [`save`] or by PyTorch (see the module
/// docs). Every problem is [`CoreError::CorruptFile`] naming the file and
/// the tensor or metadata key: a missing or extra tensor, a wrong dtype or
/// shape, layers that do not chain, non-finite values.
pub fn load(path: &Path) -> Result<Ensemble> {
    let bytes = std::fs::read(path).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?;
    from_bytes(&bytes, path)
}

/// [`load`] from bytes; `path` names them in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Ensemble> {
    let bad = |reason: String| CoreError::CorruptFile { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if let Some(f) = meta.get("format") {
        if f != FORMAT {
            return Err(bad(format!("metadata format = {f:?}, this build reads {FORMAT:?}")));
        }
    }
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let t = st.tensor(name).map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}`: dtype {:?}, expected F32", t.dtype())));
        }
        let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("tensor `{name}`: element {i} is {}", v[i])));
        }
        Ok((t.shape().to_vec(), v))
    };
    // Members and layers from the tensor names.
    let names = st.names();
    let mut members = 0;
    while names.iter().any(|n| n.starts_with(&format!("{members}."))) {
        members += 1;
    }
    if members == 0 {
        return Err(bad("tensor `0.0.weight` is missing (no member 0)".into()));
    }
    let mut layers = 0;
    while st.tensor(&format!("0.{}.weight", 2 * layers)).is_ok() {
        layers += 1;
    }
    if layers < 2 {
        return Err(bad(format!("member 0 has {layers} Linear layer(s) (`0.0.weight`, `0.2.weight`, ...); a model needs at least 2")));
    }
    let mut dims = Vec::new();
    for l in 0..layers {
        let name = format!("0.{}.weight", 2 * l);
        let (shape, _) = read(&name)?;
        if shape.len() != 2 {
            return Err(bad(format!("tensor `{name}`: expected a 2-D [out, in] weight, found shape {shape:?}")));
        }
        if l == 0 {
            dims.push(shape[1]);
        } else if shape[1] != dims[l] {
            return Err(bad(format!("tensor `{name}`: expected {} inputs (the outputs of the layer before), found shape {shape:?}", dims[l])));
        }
        dims.push(shape[0]);
    }
    let flag = |key: &str| meta.get(key).map(|v| v.trim().to_string());
    let out = *dims.last().expect("layers >= 2");
    let probabilistic = match flag("probabilistic").as_deref() {
        None => false,
        Some("true") => true,
        Some("false") => false,
        Some(v) => return Err(bad(format!("metadata probabilistic = {v:?}, expected \"true\" or \"false\""))),
    };
    let state_dim = if probabilistic { out / 2 } else { out };
    if probabilistic && out % 2 != 0 {
        return Err(bad(format!("tensor `0.{}.weight`: a probabilistic model outputs 2 S rows, found {out}", 2 * (layers - 1))));
    }
    if state_dim == 0 || dims[0] <= state_dim {
        return Err(bad(format!("tensor `0.0.weight`: {} inputs leave no room for an action after the state width {state_dim}", dims[0])));
    }
    let action_dim = dims[0] - state_dim;
    let num = |key: &str, want: usize| -> Result<()> {
        match flag(key) {
            Some(v) if v.parse::<usize>().ok() != Some(want) => Err(bad(format!("metadata {key} = {v:?} disagrees with the weights ({want})"))),
            _ => Ok(()),
        }
    };
    num("state_dim", state_dim)?;
    num("action_dim", action_dim)?;
    let activation = match flag("activation") {
        Some(a) => Activation::parse(&a).map_err(|_| bad(format!("metadata activation = {a:?}, expected \"relu\" or \"silu\"")))?,
        None => Activation::Relu,
    };
    let float = |key: &str, default: f32| -> Result<f32> {
        match flag(key) {
            Some(v) => v.parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad(format!("metadata {key} = {v:?} is not a finite number"))),
            None => Ok(default),
        }
    };
    let spec = EnsembleSpec {
        state_dim,
        action_dim,
        hidden: dims[1..dims.len() - 1].to_vec(),
        activation,
        members,
        probabilistic,
        min_logvar: float("min_logvar", -10.0)?,
        max_logvar: float("max_logvar", 0.5)?,
    };
    spec.validate().map_err(|e| bad(e.to_string()))?;
    let mut params = Vec::with_capacity(members * spec.member_params());
    let mut known = Vec::new();
    for k in 0..members {
        for l in 0..layers {
            for (suffix, want) in [("weight", vec![dims[l + 1], dims[l]]), ("bias", vec![dims[l + 1]])] {
                let name = format!("{k}.{}.{suffix}", 2 * l);
                let (shape, v) = read(&name)?;
                if shape != want {
                    return Err(bad(format!("tensor `{name}`: expected shape {want:?} (as member 0), found {shape:?}")));
                }
                params.extend(v);
                known.push(name);
            }
        }
    }
    let vec_or = |name: &str, len: usize, default: f32| -> Result<Array1<f32>> {
        if st.tensor(name).is_err() {
            return Ok(Array1::from_elem(len, default));
        }
        let (shape, v) = read(name)?;
        if shape != [len] {
            return Err(bad(format!("tensor `{name}`: expected shape [{len}], found {shape:?}")));
        }
        Ok(Array1::from(v))
    };
    let (i, s) = (spec.input_dim(), state_dim);
    let norm = Normalizer {
        input_mean: vec_or("norm.input_mean", i, 0.0)?,
        input_std: vec_or("norm.input_std", i, 1.0)?,
        target_mean: vec_or("norm.target_mean", s, 0.0)?,
        target_std: vec_or("norm.target_std", s, 1.0)?,
    };
    for (name, v) in [("norm.input_std", &norm.input_std), ("norm.target_std", &norm.target_std)] {
        if let Some(j) = v.iter().position(|&x| x <= 0.0) {
            return Err(bad(format!("tensor `{name}`: element {j} is {}, a std must be positive", v[j])));
        }
    }
    known.extend(["norm.input_mean", "norm.input_std", "norm.target_mean", "norm.target_std"].map(String::from));
    if let Some(extra) = names.iter().find(|n| !known.iter().any(|k| k == *n)) {
        return Err(bad(format!("tensor `{extra}` is not part of a {members}-member, {layers}-layer ensemble")));
    }
    Ensemble::from_params(spec, params, norm).map_err(|e| bad(e.to_string()))
}
