//! `ami plot RUN.json -o curve.png`: a run's learning curve, drawn from what
//! `ami run --json` printed.
//!
//! Two panels: the return of every episode (points coloured by phase, a line
//! through them, evaluations as larger markers with their min..max as an
//! error bar, an optional target line), and the model's training and
//! validation losses on a log axis (left out when the run has none). Several
//! runs overlay, each in its own colour. PNG and SVG are drawn in pure Rust:
//! the text uses a font embedded in the binary (agents/assets/), so no
//! system font library is needed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use serde_json::Value;

use super::input_error;

/// The quantity on the x axis.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XAxis {
    /// The episode number.
    #[default]
    Episode,
    /// The experience collected so far, in environment steps (the episodes'
    /// `experience`, or the running sum of their `steps`).
    Experience,
}

/// Arguments of `ami plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// What `ami run --json` printed: its JSON object alone, or its whole
    /// stdout (the last line starting with `{` is read). Several files
    /// overlay, each in its own colour.
    #[arg(value_name = "RUN.json", required = true)]
    pub files: Vec<PathBuf>,
    /// The image to write: `.png` or `.svg` [default: the first file with
    /// the extension `.png`].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The legend's name for each file, in order (repeat it; the files
    /// without one are named by their stem).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// The x axis: episode number, or environment steps of experience.
    #[arg(long, value_enum, default_value_t = XAxis::Episode)]
    pub x: XAxis,
    /// Draw a dashed horizontal line at this return (e.g. `--target -200`).
    #[arg(long, value_name = "R", allow_negative_numbers = true, value_parser = finite_f64)]
    pub target: Option<f64>,
    /// Image width in pixels.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u32).range(200..=8000))]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 700, value_parser = clap::value_parser!(u32).range(200..=8000))]
    pub height: u32,
    /// The title [default: agent / task / planner].
    #[arg(long)]
    pub title: Option<String>,
}

fn finite_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if drawable(v) => Ok(v),
        Ok(_) => Err(format!("`{s}` is not a finite number within ±1e300")),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// One episode's point in the return panel (and its losses).
#[derive(Debug, Clone, PartialEq)]
struct Episode {
    episode: f64,
    experience: Option<f64>,
    phase: Option<String>,
    ret: f64,
    model_loss: Option<f64>,
    val_loss: Option<f64>,
}

/// An evaluation: the mean return over its seeds and their spread.
#[derive(Debug, Clone, PartialEq)]
struct Eval {
    after_episode: f64,
    experience: Option<f64>,
    mean: f64,
    min: f64,
    max: f64,
}

/// One file's run, as drawn.
#[derive(Debug, Clone)]
struct Run {
    file: PathBuf,
    label: String,
    agent: Option<String>,
    task: Option<String>,
    planner: Option<String>,
    episodes: Vec<Episode>,
    evals: Vec<Eval>,
    /// What was left out (non-finite values), for stderr.
    notes: Vec<String>,
}

/// Draws the runs: prints the path written.
pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let output = match &args.output {
        Some(o) => o.clone(),
        None => args.files[0].with_extension("png"),
    };
    let format = ImageFormat::of(&output)?;
    if args.files.iter().any(|f| same_path(f, &output)) {
        return Err(input_error(format!("the output {} is one of the input files", output.display())));
    }
    if args.labels.len() > args.files.len() {
        return Err(input_error(format!("{} --label(s) for {} file(s): give at most one label per file", args.labels.len(), args.files.len())));
    }
    // A maze trace (`ami run --trace`) is drawn as the maze and its paths.
    {
        let file = &args.files[0];
        let text = std::fs::read(file).map_err(|e| input_error(format!("cannot read {}: {e}", file.display())))?;
        let text = String::from_utf8_lossy(&text);
        if let Ok(obj) = run_object(&text, file) {
            if obj.contains_key("trace") {
                if args.files.len() > 1 {
                    return Err(input_error("a maze trace is drawn alone: give one trace file"));
                }
                let trace = super::plot_maze::Trace::parse(&obj, file)?;
                register_fonts();
                return write_image(&output, format, (args.width, args.height), &TraceFigure(trace, args.title.clone()));
            }
        }
    }
    let mut runs = Vec::with_capacity(args.files.len());
    for (i, file) in args.files.iter().enumerate() {
        let text = std::fs::read(file).map_err(|e| input_error(format!("cannot read {}: {e}", file.display())))?;
        let text =
            String::from_utf8(text).map_err(|_| input_error(format!("{} is not UTF-8 text (expected the output of `ami run --json`)", file.display())))?;
        let label = args.labels.get(i).cloned().unwrap_or_else(|| stem(file));
        let run = parse_run(&text, file, label)?;
        for note in &run.notes {
            eprintln!("note: {}: {note}", file.display());
        }
        runs.push(run);
    }
    if args.x == XAxis::Experience {
        for run in &runs {
            if run.episodes.iter().any(|e| e.experience.is_none()) {
                return Err(input_error(format!(
                    "{}: --x experience needs each episode's `experience` or `steps` (in learning.episodes), which this run lacks",
                    run.file.display()
                )));
            }
        }
    }
    if runs.iter().all(|r| r.episodes.is_empty() && r.evals.is_empty()) {
        let names: Vec<String> = runs.iter().map(|r| r.file.display().to_string()).collect();
        return Err(input_error(format!("nothing to plot: no finite return in {}", names.join(", "))));
    }
    let fig = Figure::new(runs, &args);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(input_error(format!("cannot write {}: the folder {} does not exist", output.display(), parent.display())));
        }
    }
    write_image(&output, format, (args.width, args.height), &fig)
}

/// A picture that draws on any backend.
trait Picture {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>;
}

impl Picture for Figure {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        self.draw(root)
    }
}

/// A maze trace and its title.
struct TraceFigure(super::plot_maze::Trace, Option<String>);

impl Picture for TraceFigure {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        self.0.draw(root, self.1.as_deref())
    }
}

/// Draws with `draw` into `output` (PNG or SVG) and says so.
fn write_image(output: &Path, format: ImageFormat, size: (u32, u32), picture: &impl Picture) -> anyhow::Result<()> {
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(input_error(format!("cannot write {}: the folder {} does not exist", output.display(), parent.display())));
        }
    }
    match format {
        ImageFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                picture.draw_on(&root)?;
                root.present().map_err(|e| anyhow::anyhow!("drawing the SVG: {e}"))?;
            }
            ami_core::fsio::write_atomic(output, svg.as_bytes()).context("cannot write the picture")?;
        }
        ImageFormat::Png => {
            let root = BitMapBackend::new(output, size).into_drawing_area();
            picture.draw_on(&root)?;
            root.present().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
        }
    }
    println!("wrote {} ({}x{})", output.display(), size.0, size.1);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    fn of(path: &Path) -> anyhow::Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(input_error(format!("{}: the output's extension must be .png or .svg", path.display()))),
        }
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// The JSON object in `text`: the whole text, or its last line starting with `{`.
fn run_object(text: &str, file: &Path) -> anyhow::Result<serde_json::Map<String, Value>> {
    let whole = serde_json::from_str::<Value>(text.trim());
    let value = match whole {
        Ok(v) => v,
        Err(whole_err) => {
            let Some(line) = text.lines().rev().map(str::trim).find(|l| l.starts_with('{')) else {
                return Err(input_error(format!(
                    "{} is not JSON ({whole_err}) and has no line starting with `{{` (expected the output of `ami run --json`)",
                    file.display()
                )));
            };
            serde_json::from_str::<Value>(line).map_err(|e| input_error(format!("{}: its last line starting with `{{` is not JSON: {e}", file.display())))?
        }
    };
    match value {
        Value::Object(m) => Ok(m),
        other => Err(input_error(format!("{} holds JSON {}, not an object (expected the output of `ami run --json`)", file.display(), kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The largest magnitude drawn: an axis needs a finite span.
const MAX_VALUE: f64 = 1e300;
/// The losses drawn on the log axis (plotters' log axis stalls on a few
/// hundred decades).
const LOSS_RANGE: std::ops::RangeInclusive<f64> = 1e-100..=1e100;

/// A value an axis can show: finite and within ±[`MAX_VALUE`].
fn drawable(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_VALUE
}

fn drawable_loss(v: f64) -> bool {
    LOSS_RANGE.contains(&v)
}

/// A number, or `None` for `null` (serde_json writes NaN and infinities as
/// `null`); an error naming the field for anything else.
fn opt_number(v: Option<&Value>, file: &Path, what: &dyn Fn() -> String) -> anyhow::Result<Option<f64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        // Non-standard spellings of non-finite values.
        Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "nan" | "inf" | "-inf" | "infinity" | "-infinity") => Ok(Some(f64::NAN)),
        Some(other) => Err(input_error(format!("{}: {} is {}, not a number", file.display(), what(), kind(other)))),
    }
}

fn opt_string(m: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads one run from the text of a file.
fn parse_run(text: &str, file: &Path, label: String) -> anyhow::Result<Run> {
    let m = run_object(text, file)?;
    let returns = match m.get("returns") {
        Some(Value::Array(a)) => a,
        Some(other) => return Err(input_error(format!("{}: `returns` is {}, not an array of numbers", file.display(), kind(other)))),
        None => {
            return Err(input_error(format!(
                "{}: the JSON object has no `returns` (expected the output of `ami run --json`; it has: {})",
                file.display(),
                if m.is_empty() { "nothing".to_string() } else { m.keys().map(String::as_str).collect::<Vec<_>>().join(", ") }
            )))
        }
    };
    let mut notes = Vec::new();
    let mut skipped = Vec::new();
    // How many loss values were left out, in which episodes.
    let mut bad_losses = (0, Vec::new());
    let learning = m.get("learning").and_then(|l| l.get("episodes")).and_then(Value::as_array).filter(|e| !e.is_empty());
    let mut episodes = Vec::new();
    // Every episode's number and experience, drawn or not: where evaluations go.
    let mut timeline: Vec<(f64, Option<f64>)> = Vec::new();
    if let Some(list) = learning {
        let mut cumulative_steps = Some(0.0);
        for (i, e) in list.iter().enumerate() {
            let Value::Object(e) = e else {
                return Err(input_error(format!("{}: learning.episodes[{i}] is {}, not an object", file.display(), kind(e))));
            };
            let at = |key: &str| format!("learning.episodes[{i}].{key}");
            let episode = opt_number(e.get("episode"), file, &|| at("episode"))?.filter(|&x| drawable(x)).unwrap_or(i as f64);
            let steps = opt_number(e.get("steps"), file, &|| at("steps"))?;
            cumulative_steps = match (cumulative_steps, steps) {
                (Some(c), Some(s)) if drawable(s) => Some(c + s),
                _ => None,
            };
            let experience = opt_number(e.get("experience"), file, &|| at("experience"))?.or(cumulative_steps).filter(|&x| drawable(x));
            timeline.push((episode, experience));
            let ret = opt_number(e.get("return"), file, &|| at("return"))?;
            let loss = |key: &str| -> anyhow::Result<Option<f64>> { opt_number(e.get(key), file, &|| at(key)) };
            let model_loss = loss("model_loss")?;
            let val_loss = loss("val_loss")?;
            match ret {
                Some(r) if drawable(r) => episodes.push(Episode {
                    episode,
                    experience,
                    phase: opt_string(e, "phase"),
                    ret: r,
                    model_loss: model_loss.filter(|&l| drawable_loss(l)),
                    val_loss: val_loss.filter(|&l| drawable_loss(l)),
                }),
                _ => skipped.push(episode),
            }
            let bad = [model_loss, val_loss].iter().flatten().filter(|&&l| !drawable_loss(l)).count();
            if bad > 0 {
                bad_losses.0 += bad;
                bad_losses.1.push(episode);
            }
        }
    } else {
        for (i, r) in returns.iter().enumerate() {
            timeline.push((i as f64, None));
            match opt_number(Some(r), file, &|| format!("returns[{i}]"))? {
                Some(r) if drawable(r) => episodes.push(Episode { episode: i as f64, experience: None, phase: None, ret: r, model_loss: None, val_loss: None }),
                _ => skipped.push(i as f64),
            }
        }
    }
    if !skipped.is_empty() {
        notes.push(format!("skipped {} non-finite (or beyond ±1e300) return(s) (episode {})", skipped.len(), episode_list(&skipped)));
    }
    if bad_losses.0 > 0 {
        notes.push(format!(
            "skipped {} loss value(s) outside 1e-100..1e100 or not finite (the loss axis is logarithmic) (episode {})",
            bad_losses.0,
            episode_list(&bad_losses.1)
        ));
    }
    let evals = parse_evals(m.get("eval"), file, &timeline, &mut notes)?;
    Ok(Run {
        file: file.to_path_buf(),
        label,
        agent: opt_string(&m, "agent"),
        task: opt_string(&m, "task"),
        planner: opt_string(&m, "planner"),
        episodes,
        evals,
        notes,
    })
}

/// The first ten episodes of a list, "and N more".
fn episode_list(episodes: &[f64]) -> String {
    let list: Vec<String> = episodes.iter().take(10).map(|e| e.to_string()).collect();
    let more = if episodes.len() > 10 { format!(", and {} more", episodes.len() - 10) } else { String::new() };
    format!("{}{more}", list.join(", "))
}

/// `eval`: one object or an array of them; `null` or absent for none.
/// `after_episode` counts the episodes before the evaluation (`ami run`
/// writes `i + 1` after episode `i`); its experience is that of the last of
/// them. `timeline`: every episode's number and experience.
fn parse_evals(v: Option<&Value>, file: &Path, timeline: &[(f64, Option<f64>)], notes: &mut Vec<String>) -> anyhow::Result<Vec<Eval>> {
    let list: Vec<(String, &Value)> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().enumerate().map(|(i, e)| (format!("eval[{i}]"), e)).collect(),
        Some(e) => vec![("eval".to_string(), e)],
    };
    let episode_count = timeline.len() as f64;
    let mut out = Vec::new();
    for (name, e) in list {
        let Value::Object(e) = e else {
            return Err(input_error(format!("{}: {name} is {}, not an object", file.display(), kind(e))));
        };
        let returns: Vec<f64> = match e.get("returns") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let mut v = Vec::new();
                for (i, r) in a.iter().enumerate() {
                    v.extend(opt_number(Some(r), file, &|| format!("{name}.returns[{i}]"))?.filter(|&r| drawable(r)));
                }
                if v.len() < a.len() {
                    notes.push(format!("{name}: skipped {} non-finite (or beyond ±1e300) return(s)", a.len() - v.len()));
                }
                v
            }
            Some(other) => return Err(input_error(format!("{}: {name}.returns is {}, not an array of numbers", file.display(), kind(other)))),
        };
        let mean = opt_number(e.get("mean_return"), file, &|| format!("{name}.mean_return"))?
            .filter(|&m| drawable(m))
            .or_else(|| (!returns.is_empty()).then(|| returns.iter().sum::<f64>() / returns.len() as f64));
        let Some(mean) = mean else {
            notes.push(format!("{name}: no finite mean_return nor returns, not drawn"));
            continue;
        };
        let after = opt_number(e.get("after_episode"), file, &|| format!("{name}.after_episode"))?.filter(|&a| drawable(a)).unwrap_or(episode_count);
        let experience = opt_number(e.get("experience"), file, &|| format!("{name}.experience"))?.filter(|&x| drawable(x)).or_else(|| {
            match timeline.iter().rev().find(|&&(ep, _)| ep < after) {
                Some(&(_, experience)) => experience,
                // Before the first episode: no experience yet.
                None => timeline.first().and_then(|&(_, x)| x).map(|_| 0.0),
            }
        });
        let min = returns.iter().copied().fold(mean, f64::min);
        let max = returns.iter().copied().fold(mean, f64::max);
        out.push(Eval { after_episode: after, experience, mean, min, max });
    }
    Ok(out)
}

const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GREY: RGBColor = RGBColor(150, 150, 150);
const DARK: RGBColor = RGBColor(40, 40, 40);

/// The colour of a phase (one run): explore orange, plan blue, others after.
fn phase_colour(phase: Option<&str>, others: &[String]) -> RGBColor {
    match phase {
        Some("explore") => TAB10[1],
        Some("plan") => TAB10[0],
        None => TAB10[0],
        // Not red: that is the evaluations' colour.
        Some(p) => [TAB10[2], TAB10[4], TAB10[5], TAB10[6], TAB10[8], TAB10[9]][others.iter().position(|o| o == p).unwrap_or(0) % 6],
    }
}

/// The registered font: the embedded DejaVu Sans subset, under every family
/// name plotters asks for.
fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // The font is valid (the plot tests draw with it); a failure
            // would only leave text undrawn.
            let _ = plotters::style::register_font(family, FontStyle::Normal, FONT);
        }
    });
}

/// What to draw, prepared from the runs and the options.
struct Figure {
    runs: Vec<Run>,
    title: String,
    x: XAxis,
    target: Option<f64>,
}

impl Figure {
    fn new(runs: Vec<Run>, args: &PlotArgs) -> Self {
        let title = args.title.clone().unwrap_or_else(|| default_title(&runs));
        Self { runs, title, x: args.x, target: args.target }
    }

    fn ex(&self, e: &Episode) -> f64 {
        match self.x {
            XAxis::Episode => e.episode,
            XAxis::Experience => e.experience.unwrap_or(e.episode),
        }
    }

    fn evx(&self, e: &Eval) -> Option<f64> {
        match self.x {
            XAxis::Episode => Some(e.after_episode),
            XAxis::Experience => e.experience,
        }
    }

    fn x_label(&self) -> &'static str {
        match self.x {
            XAxis::Episode => "episode",
            XAxis::Experience => "experience (steps)",
        }
    }

    fn x_range(&self) -> (f64, f64) {
        let xs = self.runs.iter().flat_map(|r| r.episodes.iter().map(|e| self.ex(e)).chain(r.evals.iter().filter_map(|e| self.evx(e))));
        let (lo, hi) = bounds(xs).unwrap_or((0.0, 1.0));
        // Episodes and experience count from 0.
        pad(lo.min(0.0), hi, 0.02)
    }

    /// How many x labels: at most one per episode on the episode axis (no
    /// "0.5"), at most 10.
    fn x_label_count(&self, (xlo, xhi): (f64, f64)) -> usize {
        match self.x {
            XAxis::Episode => ((xhi - xlo).floor() as usize + 1).clamp(2, 10),
            XAxis::Experience => 10,
        }
    }

    /// The return panel's points, with samples along its lines and error
    /// bars (where a legend would cover them).
    fn return_points(&self) -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        for r in &self.runs {
            densify(&mut pts, r.episodes.iter().map(|e| (self.ex(e), e.ret)));
            for e in &r.evals {
                if let Some(x) = self.evx(e) {
                    densify(&mut pts, [(x, e.min), (x, e.mean), (x, e.max)]);
                }
            }
        }
        pts
    }

    /// The loss panel's points and line samples, y as log10.
    fn loss_points(&self) -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        for r in &self.runs {
            densify(&mut pts, r.episodes.iter().filter_map(|e| e.model_loss.map(|l| (self.ex(e), l.log10()))));
            densify(&mut pts, r.episodes.iter().filter_map(|e| e.val_loss.map(|l| (self.ex(e), l.log10()))));
        }
        pts
    }

    fn has_losses(&self) -> bool {
        self.runs.iter().flat_map(|r| &r.episodes).any(|e| e.model_loss.is_some() || e.val_loss.is_some())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        register_fonts();
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the plot: {e}");
        root.fill(&WHITE).map_err(err)?;
        let (w, h) = root.dim_in_pixel();
        let scale = (w.min(h) as f64 / 700.0).clamp(0.5, 4.0);
        let font = |px: f64| ("sans-serif", (px * scale).round().max(8.0));
        let body = root.titled(&self.title, font(22.0)).map_err(err)?;
        let (xlo, xhi) = self.x_range();
        if self.has_losses() {
            let (_, bh) = body.dim_in_pixel();
            let (top, bottom) = body.split_vertically(bh * 60 / 100);
            self.draw_returns(&top, (xlo, xhi), scale).map_err(err)?;
            self.draw_losses(&bottom, (xlo, xhi), scale).map_err(err)?;
        } else {
            self.draw_returns(&body, (xlo, xhi), scale).map_err(err)?;
        }
        Ok(())
    }

    fn draw_returns<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (xlo, xhi): (f64, f64),
        scale: f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let px = |v: f64| (v * scale).round().max(1.0) as u32;
        let ys = self.runs.iter().flat_map(|r| r.episodes.iter().map(|e| e.ret).chain(r.evals.iter().flat_map(|e| [e.min, e.max])));
        let (ylo, yhi) = bounds(ys.chain(self.target)).unwrap_or((0.0, 1.0));
        let (ylo, yhi) = pad(ylo, yhi, 0.05);
        let mut chart =
            ChartBuilder::on(area).margin(px(10.0)).x_label_area_size(px(40.0)).y_label_area_size(px(70.0)).build_cartesian_2d(xlo..xhi, ylo..yhi)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label())
            .y_desc("return")
            .x_labels(self.x_label_count((xlo, xhi)))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .label_style(("sans-serif", (13.0 * scale).round()))
            .axis_desc_style(("sans-serif", (15.0 * scale).round()))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()?;
        let single = self.runs.len() == 1;
        let radius = px(3.5);
        let eval_radius = px(7.0);
        let stroke = px(1.5);
        // The legend's labels (none: no empty box).
        let mut labels: Vec<String> = Vec::new();
        let mut phases_seen: Vec<Option<String>> = Vec::new();
        for r in &self.runs {
            for e in &r.episodes {
                if !phases_seen.contains(&e.phase) {
                    phases_seen.push(e.phase.clone());
                }
            }
        }
        let others: Vec<String> = phases_seen.iter().flatten().filter(|p| *p != "explore" && *p != "plan").cloned().collect();
        for (i, r) in self.runs.iter().enumerate() {
            let colour = TAB10[i % TAB10.len()];
            // One run: a grey line between the phases' colours (blue without phases).
            let line_colour = if !single {
                colour
            } else if r.episodes.iter().any(|e| e.phase.is_some()) {
                GREY
            } else {
                TAB10[0]
            };
            let line = chart.draw_series(LineSeries::new(r.episodes.iter().map(|e| (self.ex(e), e.ret)), line_colour.stroke_width(stroke)))?;
            if !single && !r.episodes.is_empty() {
                line.label(r.label.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(stroke.max(2))));
                labels.push(r.label.clone());
            }
            for phase in &phases_seen {
                let pts = r.episodes.iter().filter(|e| &e.phase == phase);
                if single {
                    let c = phase_colour(phase.as_deref(), &others);
                    chart.draw_series(pts.map(|e| Circle::new((self.ex(e), e.ret), radius, c.filled())))?;
                } else {
                    // Overlaid runs: the run's colour; explored episodes hollow.
                    let style = if phase.as_deref() == Some("explore") { colour.stroke_width(stroke) } else { colour.filled() };
                    chart.draw_series(pts.map(|e| Circle::new((self.ex(e), e.ret), radius, style)))?;
                }
            }
            let eval_colour = if single { TAB10[3] } else { colour };
            let evals: Vec<(f64, &Eval)> = r.evals.iter().filter_map(|e| self.evx(e).map(|x| (x, e))).collect();
            // The error bar's own marker, filled: a dot twice an episode's.
            let bar_style = eval_colour.filled().stroke_width(stroke);
            chart.draw_series(evals.iter().map(|&(x, e)| ErrorBar::new_vertical(x, e.min, e.mean, e.max, bar_style, 2 * eval_radius)))?;
        }
        // Legend-only entries (series without elements): phases,
        // evaluations, the target.
        let no_points = || std::iter::empty::<Circle<(f64, f64), u32>>();
        if phases_seen.iter().any(Option::is_some) {
            for phase in &phases_seen {
                let name = phase.clone().unwrap_or_else(|| "no phase".into());
                let style = if single {
                    phase_colour(phase.as_deref(), &others).filled()
                } else if phase.as_deref() == Some("explore") {
                    DARK.stroke_width(stroke)
                } else {
                    DARK.filled()
                };
                chart.draw_series(no_points())?.label(name.clone()).legend(move |(x, y)| Circle::new((x + 10, y), radius, style));
                labels.push(name);
            }
        }
        if self.runs.iter().any(|r| r.evals.iter().any(|e| self.evx(e).is_some())) {
            let c = if single { TAB10[3] } else { DARK };
            chart.draw_series(no_points())?.label("eval mean (min..max)").legend(move |(x, y)| Circle::new((x + 10, y), eval_radius, c.filled()));
            labels.push("eval mean (min..max)".into());
        }
        if let Some(t) = self.target {
            let style = ShapeStyle { color: DARK.mix(0.8), filled: false, stroke_width: stroke };
            chart.draw_series(DashedLineSeries::new(vec![(xlo, t), (xhi, t)], px(8.0), px(6.0), style))?;
            let label = format!("target {}", fmt_num(t));
            chart.draw_series(no_points())?.label(label.clone()).legend(move |(x, y)| dashed_sample(x, y, style));
            labels.push(label);
        }
        if labels.is_empty() {
            return Ok(());
        }
        let size = legend_fraction(&labels, chart.plotting_area().dim_in_pixel(), scale);
        chart
            .configure_series_labels()
            .position(legend_corner(&self.return_points(), (xlo, xhi), (ylo, yhi), size, Corner::LowerRight))
            .label_font(("sans-serif", (13.0 * scale).round()))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
        Ok(())
    }

    fn draw_losses<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (xlo, xhi): (f64, f64),
        scale: f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let px = |v: f64| (v * scale).round().max(1.0) as u32;
        let losses = self.runs.iter().flat_map(|r| &r.episodes).flat_map(|e| [e.model_loss, e.val_loss]).flatten();
        let (lo, hi) = bounds(losses).unwrap_or((0.1, 1.0));
        // Whole decades, so that at least two are labelled.
        let lo = 10f64.powf((lo / 1.2).log10().floor());
        let hi = 10f64.powf((hi * 1.2).log10().ceil());
        let mut chart = ChartBuilder::on(area)
            .margin(px(10.0))
            .x_label_area_size(px(40.0))
            .y_label_area_size(px(70.0))
            .build_cartesian_2d(xlo..xhi, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(self.x_label())
            .y_desc("model loss (log)")
            .x_labels(self.x_label_count((xlo, xhi)))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_loss(*v))
            .label_style(("sans-serif", (13.0 * scale).round()))
            .axis_desc_style(("sans-serif", (15.0 * scale).round()))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()?;
        // One run: model loss blue, val loss red. Overlaid runs: each run's
        // colour (named in the return panel's legend), the legend saying
        // which line style is which loss.
        let mut labels: Vec<String> = Vec::new();
        let single = self.runs.len() == 1;
        let stroke = px(1.5);
        let mut present = [false, false];
        for (i, r) in self.runs.iter().enumerate() {
            let colour = TAB10[i % TAB10.len()];
            for which in [0, 1] {
                let pts: Vec<(f64, f64)> =
                    r.episodes.iter().filter_map(|e| if which == 0 { e.model_loss } else { e.val_loss }.map(|l| (self.ex(e), l))).collect();
                if pts.is_empty() {
                    continue;
                }
                present[which] = true;
                let c = if single { TAB10[which * 3] } else { colour };
                let style = ShapeStyle { color: c.to_rgba(), filled: false, stroke_width: stroke };
                if which == 0 {
                    chart.draw_series(LineSeries::new(pts.iter().copied(), style))?;
                } else {
                    chart.draw_series(DashedLineSeries::new(pts.iter().copied(), px(6.0), px(4.0), style))?;
                }
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, px(2.0), c.filled())))?;
            }
        }
        for (which, name) in [(0, "model loss"), (1, "val loss")] {
            if !present[which] {
                continue;
            }
            let c = if single { TAB10[which * 3] } else { DARK };
            let style = ShapeStyle { color: c.to_rgba(), filled: false, stroke_width: stroke.max(2) };
            let entry = chart.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?.label(name);
            if which == 0 {
                entry.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            } else {
                entry.legend(move |(x, y)| dashed_sample(x, y, style));
            }
            labels.push(name.to_string());
        }
        let size = legend_fraction(&labels, chart.plotting_area().dim_in_pixel(), scale);
        chart
            .configure_series_labels()
            .position(legend_corner(&self.loss_points(), (xlo, xhi), (lo.log10(), hi.log10()), size, Corner::UpperRight))
            .label_font(("sans-serif", (13.0 * scale).round()))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
        Ok(())
    }
}

/// A dashed line's legend sample: two dashes.
fn dashed_sample(x: i32, y: i32, style: ShapeStyle) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, u32> {
    DashedPathElement::new(vec![(x, y), (x + 20, y)], 7, 6, style)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Corner {
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
}

/// Appends the points and 4 samples between each two.
fn densify(out: &mut Vec<(f64, f64)>, points: impl IntoIterator<Item = (f64, f64)>) {
    let mut prev: Option<(f64, f64)> = None;
    for p in points {
        if let Some(q) = prev {
            out.extend((1..5).map(|k| {
                let t = f64::from(k) / 5.0;
                (q.0 + (p.0 - q.0) * t, q.1 + (p.1 - q.1) * t)
            }));
        }
        out.push(p);
        prev = Some(p);
    }
}

/// About how much of the plotting area (fractions of its width and height)
/// a legend with these labels covers, with its margin.
fn legend_fraction(labels: &[String], (w, h): (u32, u32), scale: f64) -> (f64, f64) {
    let font = 13.0 * scale;
    let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let width = 20.0 * scale + 30.0 + chars * font * 0.6 + 10.0;
    let height = labels.len() as f64 * (font + 6.0) + 20.0;
    ((width / f64::from(w.max(1))).min(1.0), (height / f64::from(h.max(1))).min(1.0))
}

/// The legend's corner: the one whose legend-sized rectangle (`(fx, fy)` of
/// each axis) holds the fewest points, `preferred` on a tie.
fn legend_corner(points: &[(f64, f64)], (xlo, xhi): (f64, f64), (ylo, yhi): (f64, f64), (fx, fy): (f64, f64), preferred: Corner) -> SeriesLabelPosition {
    let count = |c: Corner| {
        let (left, lower) = match c {
            Corner::UpperLeft => (true, false),
            Corner::UpperRight => (false, false),
            Corner::LowerLeft => (true, true),
            Corner::LowerRight => (false, true),
        };
        let in_x = |x: f64| if left { x <= xlo + (xhi - xlo) * fx } else { x >= xhi - (xhi - xlo) * fx };
        let in_y = |y: f64| if lower { y <= ylo + (yhi - ylo) * fy } else { y >= yhi - (yhi - ylo) * fy };
        points.iter().filter(|&&(x, y)| in_x(x) && in_y(y)).count()
    };
    let mut best = preferred;
    for c in [Corner::LowerRight, Corner::UpperRight, Corner::LowerLeft, Corner::UpperLeft] {
        if count(c) < count(best) {
            best = c;
        }
    }
    match best {
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
        Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        Corner::LowerRight => SeriesLabelPosition::LowerRight,
    }
}

/// The title: agent / task / planner, each the runs' common value or their
/// distinct values joined by " vs ".
fn default_title(runs: &[Run]) -> String {
    let field = |f: &dyn Fn(&Run) -> Option<String>| -> Option<String> {
        let mut seen: Vec<String> = Vec::new();
        for v in runs.iter().filter_map(f) {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        (!seen.is_empty()).then(|| seen.join(" vs "))
    };
    let parts: Vec<String> = [field(&|r| r.agent.clone()), field(&|r| r.task.clone()), field(&|r| r.planner.clone())].into_iter().flatten().collect();
    if parts.is_empty() {
        runs.iter().map(|r| r.label.clone()).collect::<Vec<_>>().join(" vs ")
    } else {
        parts.join(" / ")
    }
}

fn bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Widens `lo..hi` by `frac` of its span on each side (by 1, or a tenth of
/// the value, when it is a single value).
fn pad(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = (hi.abs() * 0.1).max(1.0);
        (lo - d, hi + d)
    } else {
        (lo - span * frac, hi + span * frac)
    }
}

fn fmt_num(v: f64) -> String {
    let v = v + 0.0; // no "-0"
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A linear axis' tick: integers without decimals, others to 3 decimals
/// without trailing zeros.
fn fmt_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) {
        fmt_num(v.round())
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn fmt_loss(v: f64) -> String {
    if (0.01..1000.0).contains(&v) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Run> {
        parse_run(text, Path::new("run.json"), "run".into())
    }

    #[test]
    fn the_last_json_line_of_a_run_output_is_read() {
        let text = "ami run: agent x\nepisode seed 0: return 1\n{\"task\":\"t\",\"returns\":[1.0,null,3.0]}\n";
        let r = parse(text).unwrap();
        assert_eq!(r.task.as_deref(), Some("t"));
        assert_eq!(r.episodes.iter().map(|e| (e.episode, e.ret)).collect::<Vec<_>>(), vec![(0.0, 1.0), (2.0, 3.0)]);
        assert!(r.notes[0].contains("skipped 1 non-finite"), "{:?}", r.notes);
    }

    #[test]
    fn learning_episodes_and_evaluations_are_read() {
        let text = r#"{"returns":[1,2],"learning":{"episodes":[
            {"episode":0,"phase":"explore","return":-5,"steps":10,"model_loss":null},
            {"episode":1,"phase":"plan","return":-4,"steps":10,"model_loss":0.5,"val_loss":0}]},
            "eval":[{"after_episode":1,"returns":[-3,-1,null],"mean_return":-2}]}"#;
        let r = parse(text).unwrap();
        assert_eq!(r.episodes.len(), 2);
        assert_eq!(r.episodes[1].experience, Some(20.0), "running sum of steps");
        assert_eq!(r.episodes[1].model_loss, Some(0.5));
        assert_eq!(r.episodes[1].val_loss, None, "zero is left off the log axis");
        // After 1 episode: episode 0's experience.
        assert_eq!(r.evals, vec![Eval { after_episode: 1.0, experience: Some(10.0), mean: -2.0, min: -3.0, max: -1.0 }]);
        assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    }

    #[test]
    fn an_evaluation_sits_at_the_experience_of_the_episodes_before_it() {
        // `ami run --eval-every 2`: after_episode counts episodes (i + 1).
        let text = r#"{"returns":[1,2,null,4],"learning":{"episodes":[
            {"episode":0,"return":1,"experience":100},{"episode":1,"return":2,"experience":200},
            {"episode":2,"return":null,"experience":300},{"episode":3,"return":4,"experience":400}]},
            "eval":[{"after_episode":0,"mean_return":0},{"after_episode":2,"mean_return":2},{"after_episode":3,"mean_return":3},{"mean_return":4}]}"#;
        let r = parse(text).unwrap();
        let at: Vec<(f64, Option<f64>)> = r.evals.iter().map(|e| (e.after_episode, e.experience)).collect();
        assert_eq!(at, vec![(0.0, Some(0.0)), (2.0, Some(200.0)), (3.0, Some(300.0)), (4.0, Some(400.0))], "an undrawn episode still counts");
    }

    #[test]
    fn bad_input_names_the_file_and_what_is_missing() {
        for (text, needle) in [
            ("", "not JSON"),
            ("[1,2]", "not an object"),
            ("{\"task\":\"t\"}", "no `returns`"),
            ("{\"returns\":3}", "not an array"),
            ("{\"returns\":[\"x\"]}", "returns[0]"),
            ("{\"returns\":[1],\"eval\":3}", "eval is a number"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.downcast_ref::<crate::cli::BadInput>().is_some(), "{text}");
            let msg = format!("{e:#}");
            assert!(msg.contains("run.json") && msg.contains(needle), "{text}: {msg}");
        }
    }

    #[test]
    fn the_legend_goes_to_the_emptiest_corner() {
        let rising: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), f64::from(i))).collect();
        assert!(matches!(legend_corner(&rising, (0.0, 9.0), (0.0, 9.0), (0.3, 0.3), Corner::LowerRight), SeriesLabelPosition::LowerRight));
        let low_right = vec![(9.0, 0.0), (8.0, 1.0), (0.0, 0.0), (0.0, 9.0), (9.0, 9.0)];
        assert!(matches!(legend_corner(&low_right, (0.0, 9.0), (0.0, 9.0), (0.3, 0.3), Corner::LowerRight), SeriesLabelPosition::UpperRight));
    }

    #[test]
    fn ranges_never_collapse() {
        assert_eq!(pad(3.0, 3.0, 0.05), (2.0, 4.0));
        assert_eq!(pad(0.0, 10.0, 0.1), (-1.0, 11.0));
        assert_eq!(bounds([f64::NAN, 2.0, -1.0]), Some((-1.0, 2.0)));
        assert_eq!(fmt_loss(0.25), "0.25");
        assert_eq!(fmt_loss(0.001), "1e-3");
        assert_eq!(fmt_tick(-200.0), "-200");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(-0.0), "0");
    }
}
