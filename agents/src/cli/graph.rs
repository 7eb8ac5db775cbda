//! `ami graph FILE [--dot]`: show an agent file's graph.

use std::path::PathBuf;

use super::plugin::load_file;

/// Arguments of `ami graph`.
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// Agent file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Plugin libraries and search paths (besides the file's `[plugins]`).
    #[command(flatten)]
    pub plugins: super::plugin::PluginLibArgs,
    /// Print Graphviz DOT (e.g. `ami graph a.toml --dot | dot -Tsvg > a.svg`).
    #[arg(long)]
    pub dot: bool,
}

/// Prints the graph as DOT, or its run order by level.
pub fn run(args: GraphArgs) -> anyhow::Result<()> {
    let g = load_file(&args.file, &args.plugins)?;
    if args.dot {
        print!("{}", g.graph.to_dot());
        return Ok(());
    }
    println!("{}: {} nodes; run order by level (nodes of one level may run concurrently):", args.file.display(), g.graph.node_names().len());
    for (k, level) in g.graph.levels().iter().enumerate() {
        let names: Vec<String> = level
            .iter()
            .map(|n| {
                let rate = g.graph.rate(n).unwrap_or(1);
                let bg = g.graph.is_background(n).unwrap_or(false);
                match (rate, bg) {
                    (1, false) => n.to_string(),
                    (r, false) => format!("{n} (every {r} ticks)"),
                    (r, true) => format!("{n} (every {r} ticks, background)"),
                }
            })
            .collect();
        println!("  level {k}: {}", names.join(", "));
    }
    Ok(())
}
