//! `ami list`: every implementation agent files can name, by kind, with
//! its parameters (what `docs/agent-files.md` tabulates).

use super::plugin::PluginLibArgs;
use anyhow::Context;

/// Arguments of `ami list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Print the Markdown table of docs/agent-files.md.
    #[arg(long)]
    pub markdown: bool,
    /// Plugin libraries whose modules to list as well.
    #[command(flatten)]
    pub plugins: PluginLibArgs,
}

/// Lists the registry.
pub fn run(args: ListArgs) -> anyhow::Result<()> {
    let mut registry = ami_agents::registry();
    let opts = args.plugins.load_options()?;
    let mut host = ami_plugin_host::PluginHost::new(opts.host);
    for p in &opts.plugins {
        let plugin = host.load(p).with_context(|| format!("loading plugin `{p}`"))?;
        ami_plugin_host::register_plugin(&mut registry, &plugin)?;
    }
    host.check_pins()?;
    if args.markdown {
        print!("{}", registry.markdown_table());
        return Ok(());
    }
    let mut kind = None;
    for imp in registry.iter() {
        if kind != Some(imp.kind) {
            println!("{}:", imp.kind);
            kind = Some(imp.kind);
        }
        println!("  {:<28} {}", imp.name, imp.summary);
        for p in &imp.params {
            let default = p.default.as_ref().map(|d| format!(" = {d}")).unwrap_or_default();
            println!("      {}{default}  ({}) {}", p.name, p.ty, p.doc);
        }
    }
    Ok(())
}
