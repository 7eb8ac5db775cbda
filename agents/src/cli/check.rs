//! `ami check FILE`: validate an agent file without running it.

use std::path::PathBuf;

use super::plugin::load_file;

/// Arguments of `ami check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Agent file (TOML) to validate.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Plugin libraries and search paths (besides the file's `[plugins]`).
    #[command(flatten)]
    pub plugins: super::plugin::PluginLibArgs,
}

/// Validates the file: prints a summary, or every problem (exit code 2).
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let g = load_file(&args.file, &args.plugins)?;
    println!(
        "{}: ok: {} nodes in {} levels, environment `{}` ({}), actor(s) {}, executor {}, {} episode(s)",
        args.file.display(),
        g.graph.node_names().len(),
        g.graph.levels().len(),
        g.environment,
        g.task.name,
        if g.actors.is_empty() { "none".to_string() } else { g.actors.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ") },
        g.config.executor,
        g.config.seeds.len(),
    );
    Ok(())
}
