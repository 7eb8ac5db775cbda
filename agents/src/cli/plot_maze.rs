//! `ami plot TRACE.json`: what `ami run --trace` wrote for a maze, drawn
//! as the maze (walls filled), each episode's executed path, its start and
//! goal, the subgoals every `level` node handed down (one colour a level)
//! and the places a level planned round. A task seen as images (the wall
//! task) is drawn the same way: its walls read off the images, and the
//! latent path (the perception's embeddings) decoded back to positions by
//! a linear probe, next to the true path. Up to four episodes, one panel
//! each.

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use super::input_error;

/// A level's name, subgoals and the points it planned round.
type LevelMarks = (String, Vec<(f64, f64)>, Vec<(f64, f64)>);

/// One episode of a trace, as drawn.
struct Panel {
    seed: u64,
    success: Option<bool>,
    goal: Option<[f64; 2]>,
    path: Vec<(f64, f64)>,
    /// The latent path decoded by the trace's linear probe.
    decoded: Vec<(f64, f64)>,
    /// Per level: its name, subgoals and avoided points.
    levels: Vec<LevelMarks>,
}

/// The maze rows and panels of a trace.
pub(crate) struct Trace {
    task: String,
    rows: Vec<Vec<bool>>,
    panels: Vec<Panel>,
    episodes: usize,
    /// The probe's R^2 (x, y) on the trace's frames.
    probe_r2: Option<(f64, f64)>,
}

fn point(v: &Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))
}

impl Trace {
    /// Reads a trace (`"trace"` at the top); errors name what is wrong.
    pub(crate) fn parse(v: &serde_json::Map<String, Value>, file: &std::path::Path) -> anyhow::Result<Self> {
        let bad = |what: &str| input_error(format!("{}: not a maze trace of `ami run --trace` ({what})", file.display()));
        let task = v.get("task").and_then(Value::as_str).unwrap_or("").to_string();
        let rows: Vec<Vec<bool>> = v
            .get("maze")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `maze`: the task is not a maze"))?
            .iter()
            .map(|r| r.as_str().map(|s| s.chars().map(|c| c == '#').collect()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("`maze` rows must be strings"))?;
        if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len() || r.is_empty()) {
            return Err(bad("`maze` rows must be non-empty and of one length"));
        }
        let eps = v.get("episodes").and_then(Value::as_array).ok_or_else(|| bad("no `episodes`"))?;
        // Positions in [0, 1] of an image task are drawn on its pixel grid.
        let scale = v.get("scale").and_then(Value::as_f64).unwrap_or(1.0);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(bad("`scale` must be a positive number"));
        }
        let point = |v: &Value| point(v).map(|(x, y)| (x * scale, y * scale));
        let points = |e: &Value, key: &str| -> Vec<(f64, f64)> {
            e.get(key).and_then(Value::as_array).map(|p| p.iter().filter_map(point).collect()).unwrap_or_default()
        };
        let probe_r2 = v.get("probe_r2").and_then(Value::as_array).and_then(|r| Some((r.first()?.as_f64()?, r.get(1)?.as_f64()?)));
        let mut panels = Vec::new();
        for e in eps.iter().take(4) {
            let path = points(e, "path");
            let mut levels = Vec::new();
            if let Some(ls) = e.get("levels").and_then(Value::as_object) {
                for (name, l) in ls {
                    // Subgoals are [tick, [z...]].
                    let subs = l
                        .get("subgoals")
                        .and_then(Value::as_array)
                        .map(|s| s.iter().filter_map(|x| x.as_array().and_then(|a| a.get(1)).and_then(point)).collect())
                        .unwrap_or_default();
                    let avoided = l.get("avoided").and_then(Value::as_array).map(|s| s.iter().filter_map(point).collect()).unwrap_or_default();
                    levels.push((name.clone(), subs, avoided));
                }
            }
            panels.push(Panel {
                seed: e.get("seed").and_then(Value::as_u64).unwrap_or(0),
                success: e.get("success").and_then(Value::as_bool),
                goal: e.get("goal").and_then(point).map(|(x, y)| [x, y]),
                path,
                decoded: points(e, "decoded"),
                levels,
            });
        }
        if panels.is_empty() {
            return Err(bad("no episodes"));
        }
        Ok(Self { task, rows, panels, episodes: eps.len(), probe_r2 })
    }

    /// Draws the panels side by side (two rows of two for three or four,
    /// so every maze keeps its proportions).
    pub(crate) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: Option<&str>) -> anyhow::Result<()> {
        let err = |e: String| anyhow::anyhow!("drawing: {e}");
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let title = title.map(str::to_string).unwrap_or_else(|| {
            let shown = self.panels.len();
            let probe = self.probe_r2.map(|(x, y)| format!(" (probe R² {x:.3} / {y:.3})")).unwrap_or_default();
            format!("{}: {shown} of {} episode(s){probe}", self.task, self.episodes)
        });
        let root = root.titled(&title, ("sans-serif", 22)).map_err(|e| err(e.to_string()))?;
        let n = self.panels.len();
        let (r, c) = if n >= 3 { (2, 2) } else { (1, n) };
        let areas = root.split_evenly((r, c));
        let (rows, cols) = (self.rows.len() as f64, self.rows[0].len() as f64);
        let colours = [RGBColor(230, 120, 20), RGBColor(150, 40, 200), RGBColor(20, 160, 160), RGBColor(120, 120, 0)];
        for (panel, area) in self.panels.iter().zip(areas.iter()) {
            let outcome = match panel.success {
                Some(true) => "success",
                Some(false) => "failure",
                None => "",
            };
            let mut chart = ChartBuilder::on(area)
                .caption(format!("seed {} {outcome}", panel.seed), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(20)
                .y_label_area_size(28)
                .build_cartesian_2d(0.0..cols, 0.0..rows)
                .map_err(|e| err(e.to_string()))?;
            chart.configure_mesh().disable_mesh().x_labels(6).y_labels(6).draw().map_err(|e| err(e.to_string()))?;
            let walls = self.rows.iter().enumerate().flat_map(|(ri, row)| {
                row.iter().enumerate().filter(|(_, &w)| w).map(move |(ci, _)| {
                    let y = rows - 1.0 - ri as f64;
                    Rectangle::new([(ci as f64, y), (ci as f64 + 1.0, y + 1.0)], RGBColor(90, 90, 90).filled())
                })
            });
            chart.draw_series(walls).map_err(|e| err(e.to_string()))?;
            for (i, (name, subs, avoided)) in panel.levels.iter().enumerate() {
                let colour = colours[i % colours.len()];
                chart
                    .draw_series(subs.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                    .map_err(|e| err(e.to_string()))?
                    .label(format!("{name} subgoals"))
                    .legend(move |(x, y)| Circle::new((x, y), 4, colour.filled()));
                if !avoided.is_empty() {
                    chart
                        .draw_series(avoided.iter().map(|&p| Cross::new(p, 7, RED.stroke_width(3))))
                        .map_err(|e| err(e.to_string()))?
                        .label(format!("{name} planned round"))
                        .legend(|(x, y)| Cross::new((x, y), 5, RED.stroke_width(2)));
                }
            }
            chart
                .draw_series(LineSeries::new(panel.path.iter().copied(), BLUE.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label("path")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLUE.stroke_width(2)));
            if !panel.decoded.is_empty() {
                let orange = RGBColor(230, 120, 20);
                chart
                    .draw_series(DashedLineSeries::new(panel.decoded.iter().copied(), 6, 4, orange.stroke_width(2)))
                    .map_err(|e| err(e.to_string()))?
                    .label("latent path, probe-decoded")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], orange.stroke_width(2)));
            }
            if let Some(&s) = panel.path.first() {
                chart.draw_series(std::iter::once(Circle::new(s, 6, GREEN.filled()))).map_err(|e| err(e.to_string()))?;
            }
            if let Some(g) = panel.goal {
                chart.draw_series(std::iter::once(TriangleMarker::new((g[0], g[1]), 8, RED.filled()))).map_err(|e| err(e.to_string()))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}
