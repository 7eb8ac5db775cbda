//! `ami plugin inspect|new`, and the plugin flags of `ami run`.

use std::path::{Path, PathBuf};

use ami_agents::LoadOptions;
use ami_plugin_host::abi::{Dims, ModuleKind as Kind, ABI_MAJOR, ABI_MINOR, LAYOUT_HASH};
use ami_plugin_host::{decl, probe_dims, ModuleInfo, Plugin, PluginHost, PluginHostConfig};
use anyhow::{bail, Context};

use super::input_error;

/// Plugin library flags of `ami run`, `ami check` and `ami graph`.
#[derive(clap::Args, Debug, Default)]
pub struct PluginLibArgs {
    /// Load a plugin library: a path, or a plugin name searched in
    /// --plugin-dir and $AMI_PLUGIN_PATH (repeatable). Agent files name
    /// plugin modules `plugin:NAME/MODULE` in their nodes; the plugins
    /// their nodes name are also looked up by name.
    #[arg(long = "plugin", value_name = "PATH|NAME")]
    pub plugins: Vec<String>,
    /// A directory searched for `lib<NAME>.so` (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Pin a library's SHA-256: `NAME=HEX` or `PATH=HEX` (repeatable); a
    /// library whose digest differs is refused.
    #[arg(long = "plugin-sha256", value_name = "KEY=HEX")]
    pub plugin_sha256: Vec<String>,
    /// Accept plugins built with panic = "abort" (their panics abort ami).
    #[arg(long)]
    pub allow_panic_abort: bool,
}

/// Plugin flags of `ami run`: libraries, and plugin tasks.
#[derive(clap::Args, Debug, Default)]
pub struct PluginArgs {
    /// Plugin libraries.
    #[command(flatten)]
    pub libs: PluginLibArgs,
    /// Run the standard agent on a plugin's environment:
    /// `PLUGIN` (its only environment) or `PLUGIN/MODULE`.
    #[arg(long, value_name = "PLUGIN[/ENV]", conflicts_with_all = ["file", "task"])]
    pub plugin_task: Option<String>,
    /// With --plugin-task: a plugin planner `plugin:NAME/MODULE` instead of
    /// --planner.
    #[arg(long, value_name = "plugin:NAME/MODULE", requires = "plugin_task", conflicts_with = "planner")]
    pub plugin_planner: Option<String>,
}

impl PluginLibArgs {
    /// The loader options these flags give.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let mut host = PluginHostConfig {
            search_paths: self.plugin_dirs.clone(),
            allow_panic_abort: self.allow_panic_abort,
            probe: probe_command(),
            ..Default::default()
        };
        for pin in &self.plugin_sha256 {
            let (k, v) = pin.split_once('=').with_context(|| format!("--plugin-sha256 `{pin}`: expected KEY=HEX"))?;
            host.sha256.insert(k.to_string(), v.to_string());
        }
        Ok(LoadOptions { plugins: self.plugins.clone(), host })
    }
}

/// How this binary probes a library before loading it: itself, in a child
/// process (`ami` answers [`ami_plugin_host::probe::PROBE_ARG`] in `main`),
/// so a corrupt library crashes the child, not ami. None when the
/// executable's path is unknown (then libraries load in-process).
fn probe_command() -> Option<ami_plugin_host::ProbeCommand> {
    ami_plugin_host::ProbeCommand::current_exe().ok()
}

/// `ami plugin`: inspect plugin libraries, start a new plugin.
#[derive(clap::Args, Debug)]
pub struct PluginCommand {
    #[command(subcommand)]
    command: PluginSub,
}

#[derive(clap::Subcommand, Debug)]
enum PluginSub {
    /// Show a plugin library's declaration, whether this ami can load it,
    /// and its modules with their ports and parameters.
    Inspect(InspectArgs),
    /// Create a new plugin crate from the template (a small task: an
    /// environment, its world model and its cost).
    New(NewArgs),
}

/// Arguments of `ami plugin inspect`.
#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The library (`lib<name>.so`).
    path: PathBuf,
    /// Only read the declaration from the file; do not load the library
    /// (listing modules runs the plugin's register function).
    #[arg(long)]
    no_load: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `ami plugin new`.
#[derive(clap::Args, Debug)]
struct NewArgs {
    /// Plugin name (letters, digits, `_`); the crate is created in ./NAME.
    name: String,
    /// Directory to create the crate in (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Path of the ami-plugin-abi crate (default: the one this ami was
    /// built from).
    #[arg(long)]
    abi_path: Option<PathBuf>,
}

/// Runs `ami plugin ...`.
pub fn run(cmd: PluginCommand) -> anyhow::Result<()> {
    match cmd.command {
        PluginSub::Inspect(a) => inspect(a),
        PluginSub::New(a) => new(a),
    }
}

fn ports(kind: Kind, d: Option<&Dims>) -> String {
    let w = |n: Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
    let (o, s, a, l, h) = (w(d.map(|d| d.obs_dim)), w(d.map(|d| d.state_dim)), w(d.map(|d| d.action_dim)), w(d.map(|d| d.latent_dim)), w(d.map(|d| d.horizon)));
    match kind {
        Kind::ENVIRONMENT => format!("in: action[{a}]  out: observation[{o}], reward, done  (max {} steps)", w(d.map(|d| d.max_steps))),
        Kind::WORLD_MODEL => format!("in: state[{s}], action[{a}]{}  out: next_state[{s}]", if l == "0" { String::new() } else { format!(", latent[{l}]") }),
        Kind::INTRINSIC_COST => "in: state, action, next_state  out: cost".into(),
        Kind::CRITIC => "in: state  out: value".into(),
        Kind::PERCEPTION => format!("in: observation[{o}]  out: state[{s}]"),
        Kind::ACTOR => format!("in: state, cost  out: action[{a}]"),
        Kind::PLANNER => format!("in: state, world model, cost  out: plan[{h}, action_dim]"),
        Kind::MEMORY => format!("in: transition(state[{s}], action[{a}], cost, next_state[{s}])  out: transitions (capacity {})", w(d.map(|d| d.capacity))),
        Kind::CONFIGURATOR => "in: state  out: modulations".into(),
        _ => "?".into(),
    }
}

/// Set in the environment of the child process `ami plugin inspect` runs
/// itself in ([`inspect_in_child`]).
const INSPECT_CHILD: &str = "AMI_PLUGIN_INSPECT_CHILD";

/// `ami plugin inspect` loads the library and creates each of its modules
/// in a child process (ami itself, with the same arguments), never in the
/// process that reports on it: a corrupt library can corrupt the memory of
/// the process it is loaded in in ways a probe in another process (another
/// address layout) does not see, and then only the child ends. The child's
/// output and exit status are passed on; a child ended by a signal is a
/// refused library (exit 2).
fn inspect_in_child(a: &InspectArgs) -> anyhow::Result<()> {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().context("cannot find the ami executable to inspect the plugin in a child process")?;
    let status = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(INSPECT_CHILD, "1")
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot start {} to inspect the plugin", exe.display()))?;
    match (status.code(), status.signal()) {
        (Some(code), _) => std::process::exit(code),
        // A closed stdout ends the child as it would have ended ami.
        (None, Some(13)) => std::process::exit(141), // SIGPIPE
        (None, sig) => Err(input_error(format!(
            "plugin {}: refused: inspecting it in a child process crashed the child ({}): the file is corrupt or not a library this system can load",
            a.path.display(),
            sig.map_or_else(|| status.to_string(), ami_plugin_host::probe::signal_name)
        ))),
    }
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    if !a.no_load && std::env::var_os(INSPECT_CHILD).is_none() {
        return inspect_in_child(&a);
    }
    let d = PluginHost::inspect_file(&a.path)?;
    let verdict = decl::check_declaration(&a.path, &d, false);
    let mut plugin: Option<std::sync::Arc<Plugin>> = None;
    let mut load_error = None;
    if !a.no_load && verdict.is_ok() {
        let mut host = PluginHost::new(PluginHostConfig { probe: probe_command(), ..Default::default() });
        match host.load(&a.path) {
            Ok(p) => plugin = Some(p),
            Err(e) => load_error = Some(e),
        }
    }
    let modules: Vec<(ModuleInfo, Option<Dims>)> =
        plugin.as_ref().map(|p| p.modules().iter().map(|m| (m.clone(), probe_dims(p, &m.name, "{}").ok())).collect()).unwrap_or_default();
    // An environment runs with its plugin's world models: their action
    // widths must agree (the state width may differ through a perception).
    let envs = modules.iter().filter(|(m, _)| m.kind == Kind::ENVIRONMENT).filter_map(|(m, d)| Some((m, d.as_ref()?)));
    let mismatches: Vec<String> = envs
        .flat_map(|(e, ed)| {
            modules.iter().filter(|(m, _)| m.kind == Kind::WORLD_MODEL).filter_map(move |(m, d)| {
                let md = d.as_ref()?;
                (md.action_dim != ed.action_dim)
                    .then(|| format!("world model `{}` takes actions of width {}, environment `{}` gives {}", m.name, md.action_dim, e.name, ed.action_dim))
            })
        })
        .collect();
    // How agent files see each module: the implementation the registry
    // declares for it (kind, ports, every parameter).
    let mut registry = ami_agents::registry();
    if let Some(p) = &plugin {
        ami_plugin_host::register_plugin(&mut registry, p)?;
    }
    let agent_file = |m: &ModuleInfo| registry.iter().find(|i| i.name == ami_config::plugin_name(&d.name, &m.name)).cloned();
    let port_list = |ports: &[ami_graph::PortSpec]| -> String {
        if ports.is_empty() {
            return "-".into();
        }
        ports.iter().map(|p| format!("{}{}", p.name, if p.required { "*" } else { "" })).collect::<Vec<_>>().join(", ")
    };
    if a.json {
        let mods: Vec<serde_json::Value> = modules
            .iter()
            .map(|(m, dims)| {
                serde_json::json!({
                    "kind": m.kind.to_string(),
                    "name": m.name,
                    "reference": format!("plugin:{}/{}", d.name, m.name),
                    "description": m.description,
                    "ports": ports(m.kind, dims.as_ref()),
                    "params": m.params.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty, "default": p.default, "doc": p.doc})).collect::<Vec<_>>(),
                    "agent_file": agent_file(m).map(|i| serde_json::json!({
                        "kind": i.kind.to_string(),
                        "inputs": i.ports.inputs.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                        "outputs": i.ports.outputs.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                        "params": i.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                    })),
                })
            })
            .collect();
        let out = serde_json::json!({
            "path": a.path.display().to_string(),
            "name": d.name, "version": d.version,
            "abi": format!("{}.{}", d.abi_major, d.abi_minor),
            "abi_crate_version": d.abi_crate_version,
            "target": d.target,
            "panic": if d.panic_unwind() { "unwind" } else { "abort" },
            "layout_hash": format!("{:#018x}", d.layout_hash),
            "decl_size": d.decl_size,
            "sha256": plugin.as_ref().and_then(|p| p.info().sha256.clone()),
            "compatible": verdict.is_ok(),
            "refusal": verdict.as_ref().err().map(|e| e.to_string()),
            "load_error": load_error.as_ref().map(|e| e.to_string()),
            "width_mismatches": mismatches,
            "modules": mods,
        });
        println!("{out}");
    } else {
        println!("plugin {} {}  ({})", d.name, d.version, a.path.display());
        println!("  ABI            {}.{} (ami-plugin-abi {}); this ami speaks {ABI_MAJOR}.{ABI_MINOR}", d.abi_major, d.abi_minor, d.abi_crate_version);
        println!("  layout hash    {:#018x} (host {LAYOUT_HASH:#018x})", d.layout_hash);
        println!("  declaration    {} bytes at file offset {:#x}", d.decl_size, d.file_offset.unwrap_or(0));
        println!("  target         {} (host {})", d.target, decl::host_target());
        println!("  panic          {}{}", if d.panic_unwind() { "unwind" } else { "abort" }, if d.debug_assertions() { ", debug assertions" } else { "" });
        println!("  sha256         {}", plugin.as_ref().and_then(|p| p.info().sha256.clone()).unwrap_or_else(|| "(not loaded)".into()));
        match &verdict {
            Ok(w) if w.is_empty() => println!("  compatible     yes"),
            Ok(w) => println!("  compatible     yes, with warnings: {}", w.join("; ")),
            Err(e) => println!("  compatible     NO: {e}"),
        }
        if let Some(e) = &load_error {
            println!("  load           FAILED: {e}");
        }
        for m in &mismatches {
            println!("  WARNING        {m}: an agent cannot plan with the two together");
        }
        if a.no_load {
            println!("  modules        (not loaded: --no-load)");
        }
        for (m, dims) in &modules {
            println!("\n  {} plugin:{}/{}  — {}", m.kind, d.name, m.name, m.description);
            println!("    ports   {}", ports(m.kind, dims.as_ref()));
            match agent_file(m) {
                Some(i) => println!(
                    "    node    kind = \"{}\": {} -> {}; parameters: {}",
                    i.kind,
                    port_list(&i.ports.inputs),
                    port_list(&i.ports.outputs),
                    if i.params.is_empty() { "none".to_string() } else { i.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ") }
                ),
                None => println!("    node    (not an agent-file node: used through the modules that name it)"),
            }
            if m.params.is_empty() {
                println!("    params  (none)");
            }
            for p in &m.params {
                println!("    param   {} ({}, default {}): {}", p.name, p.ty, p.default, p.doc);
            }
        }
    }
    if let Err(e) = verdict {
        return Err(e.into());
    }
    if let Some(e) = load_error {
        return Err(e.into());
    }
    Ok(())
}

const TEMPLATE_CARGO: &str = include_str!("../../../templates/plugin/Cargo.toml.tmpl");
const TEMPLATE_LIB: &str = include_str!("../../../templates/plugin/src/lib.rs.tmpl");
const TEMPLATE_AGENT: &str = include_str!("../../../templates/plugin/agent.toml.tmpl");

fn new(a: NewArgs) -> anyhow::Result<()> {
    let name = a.name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(input_error(format!("plugin name `{name}`: use letters, digits and `_`, not starting with a digit")));
    }
    let dir = a.dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let abi = match a.abi_path {
        Some(p) => p,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/abi"),
    };
    let abi = std::fs::canonicalize(&abi).unwrap_or(abi);
    let abi_dep =
        if abi.join("Cargo.toml").is_file() { format!("{{ path = {:?} }}", abi.display().to_string()) } else { format!("\"{}\"", env!("CARGO_PKG_VERSION")) };
    let fill = |t: &str| t.replace("{{name}}", name).replace("{{lib}}", name).replace("{{plugin}}", name).replace("{{abi_dep}}", &abi_dep);
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    for (file, text) in [("Cargo.toml", TEMPLATE_CARGO), ("src/lib.rs", TEMPLATE_LIB), ("agent.toml", TEMPLATE_AGENT)] {
        let p = dir.join(file);
        std::fs::write(&p, fill(text)).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("created plugin crate {} (plugin `{name}`: modules env, model, cost)", dir.display());
    println!(
        "next:\n  cd {}\n  cargo build\n  ami plugin inspect target/debug/lib{name}.so\n  ami run agent.toml --plugin target/debug/lib{name}.so",
        dir.display()
    );
    Ok(())
}

/// Loads an agent file with its plugins, for `ami check` and `ami graph`.
pub fn load_file(file: &std::path::Path, plugins: &PluginLibArgs) -> anyhow::Result<ami_config::AgentGraph> {
    let opts = plugins.load_options()?;
    let loaded = ami_agents::load(&ami_agents::AgentSource::File(file.to_path_buf()), &opts)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("{} is not a valid agent file", file.display()))?;
    Ok(loaded.graph)
}
