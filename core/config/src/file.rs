//! Reading agent files: TOML with the span of every key and value kept, so
//! each problem names its line.

use std::collections::BTreeMap;
use std::fmt;

use ami_core::{CoreError, Result};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use ami_core::{Location, ParamValue, Problem, ProblemKind};
use ami_graph::{EdgeSpec, ExecutorKind};

/// A TOML value with spans.
#[derive(Debug)]
pub(crate) enum Val {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Spanned<Val>>),
    Table(Vec<(Spanned<String>, Spanned<Val>)>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Int(_) => "integer",
            Val::Float(_) => "float",
            Val::Bool(_) => "boolean",
            Val::Str(_) => "string",
            Val::Array(_) => "array",
            Val::Table(_) => "table",
        }
    }
    fn to_param(&self) -> ParamValue {
        match self {
            Val::Int(i) => ParamValue::Int(*i),
            Val::Float(f) => ParamValue::Float(*f),
            Val::Bool(b) => ParamValue::Bool(*b),
            Val::Str(s) => ParamValue::Str(s.clone()),
            Val::Array(a) => ParamValue::List(a.iter().map(|v| v.get_ref().to_param()).collect()),
            Val::Table(t) => ParamValue::Table(t.iter().map(|(k, v)| (k.get_ref().clone(), v.get_ref().to_param())).collect()),
        }
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Val;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value (dates and times are not supported)")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
                Ok(Val::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val, E> {
                i64::try_from(v).map(Val::Int).map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
                Ok(Val::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
                Ok(Val::Bool(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Val, E> {
                Ok(Val::Str(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<Val, E> {
                Ok(Val::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Val::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry()? {
                    v.push((k, x));
                }
                Ok(Val::Table(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Maps byte offsets to [`Location`]s.
pub(crate) struct Lines<'a> {
    file: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(file: &'a str, text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { file, starts }
    }
    /// 1-based line of byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
    pub(crate) fn at(&self, offset: usize) -> Option<Location> {
        Some(Location::line(self.file, self.line(offset)))
    }
}

/// One parameter as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEntry {
    /// Name.
    pub name: String,
    /// Value.
    pub value: ParamValue,
    /// `file:line` of the key.
    pub location: Option<Location>,
}

/// One node of an agent file.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Node name.
    pub name: String,
    /// Module kind, as written (checked against the registry later).
    pub kind: String,
    /// `file:line` of the `kind` value.
    pub kind_location: Option<Location>,
    /// Implementation name, as written.
    pub implementation: String,
    /// `file:line` of the `implementation` value.
    pub implementation_location: Option<Location>,
    /// Run every `rate` ticks.
    pub rate: u32,
    /// Run in the background (outputs published `rate` ticks later).
    pub background: bool,
    /// Parameters.
    pub params: Vec<ParamEntry>,
    /// `file:line` of the node's table.
    pub location: Option<Location>,
}

/// An agent file, parsed (not yet checked against the registry).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The file name used in locations.
    pub file: String,
    /// Agent name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Episode seeds (default `0..10`).
    pub seeds: Vec<u64>,
    /// Executor.
    pub executor: ExecutorKind,
    /// Nodes in file order.
    pub nodes: Vec<NodeConfig>,
    /// Edges, one per destination, in file order.
    pub edges: Vec<EdgeSpec>,
    /// The `[plugins]` table.
    pub plugins: PluginsConfig,
    /// Evaluation episodes (`eval_seed`, `eval_episodes`, `eval_every` in
    /// `[agent]`): seeds, and every how many learning episodes they run
    /// (0: once, after the last).
    pub eval_seeds: Vec<u64>,
    /// See [`AgentConfig::eval_seeds`].
    pub eval_every: u64,
}

/// The `[plugins]` table of an agent file: the plugin libraries the agent
/// needs, so the file runs without command-line flags. Relative paths are
/// relative to the agent file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginsConfig {
    /// Libraries to load: a path (contains `/` or ends in `.so`) or a plugin
    /// name looked up in `search` and `$AMI_PLUGIN_PATH`.
    pub load: Vec<String>,
    /// Directories searched for `lib<NAME>.so`.
    pub search: Vec<String>,
    /// SHA-256 pins (hex) by plugin name or library path; a library whose
    /// digest differs is refused.
    pub sha256: BTreeMap<String, String>,
    /// Accept plugins built with `panic = "abort"`.
    pub allow_panic_abort: bool,
    /// Where each `load` entry is written (same order as `load`), so a
    /// library that cannot be loaded is reported at its line.
    pub load_at: Vec<Option<Location>>,
    /// Where the `[plugins]` table is.
    pub location: Option<Location>,
}

impl PluginsConfig {
    /// Whether the table asks for anything.
    pub fn is_empty(&self) -> bool {
        self.load.is_empty() && self.search.is_empty() && self.sha256.is_empty() && !self.allow_panic_abort
    }
}

/// The default episodes of an agent file without `[agent]` seeds.
pub const DEFAULT_EPISODES: u64 = 10;

struct Parser<'a> {
    lines: Lines<'a>,
    problems: Vec<Problem>,
}

impl Parser<'_> {
    fn schema(&mut self, offset: usize, msg: String) {
        let at = self.lines.at(offset);
        self.problems.push(Problem::new(ProblemKind::Schema, msg).at(at));
    }
    fn schema_node(&mut self, node: &str, offset: usize, msg: String) {
        let at = self.lines.at(offset);
        self.problems.push(Problem::new(ProblemKind::Schema, msg).node(node).at(at));
    }
    fn string(&mut self, v: &Spanned<Val>, what: &str, node: Option<&str>) -> Option<String> {
        match v.get_ref() {
            Val::Str(s) => Some(s.clone()),
            other => {
                let msg = format!("{what} must be a string, got a {}", other.type_name());
                match node {
                    Some(n) => self.schema_node(n, v.span().start, msg),
                    None => self.schema(v.span().start, msg),
                }
                None
            }
        }
    }
    fn boolean(&mut self, v: &Spanned<Val>, what: &str, node: Option<&str>) -> Option<bool> {
        match v.get_ref() {
            Val::Bool(b) => Some(*b),
            other => {
                let msg = format!("{what} must be true or false, got a {}", other.type_name());
                match node {
                    Some(n) => self.schema_node(n, v.span().start, msg),
                    None => self.schema(v.span().start, msg),
                }
                None
            }
        }
    }
    fn seed(&mut self, v: &Spanned<Val>, what: &str) -> Option<u64> {
        match v.get_ref() {
            Val::Int(i) if *i >= 0 => Some(*i as u64),
            Val::Int(i) => {
                let at = self.lines.at(v.span().start);
                self.problems.push(Problem::new(ProblemKind::ParameterRange, format!("{what} must be >= 0, got {i}")).at(at));
                None
            }
            other => {
                self.schema(v.span().start, format!("{what} must be an integer, got a {}", other.type_name()));
                None
            }
        }
    }
}

fn unknown_key(key: &str, section: &str, known: &[&str]) -> String {
    format!("unknown key `{key}` in {section} (expected one of: {})", known.join(", "))
}

/// Parses an agent file. Returns the configuration (as much of it as could
/// be read) and every structural problem, or [`CoreError::Syntax`] when the
/// text is not TOML.
pub fn parse_agent(text: &str, file: &str) -> Result<(AgentConfig, Vec<Problem>)> {
    let mut p = Parser { lines: Lines::new(file, text), problems: Vec::new() };
    let root: Spanned<Val> = match toml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let location = e.span().and_then(|s| p.lines.at(s.start)).unwrap_or_else(|| Location::file(file));
            return Err(CoreError::Syntax { location, message: e.message().trim().to_string() });
        }
    };
    let mut cfg = AgentConfig {
        file: file.to_string(),
        name: None,
        description: None,
        seeds: (0..DEFAULT_EPISODES).collect(),
        executor: ExecutorKind::Sequential,
        nodes: Vec::new(),
        edges: Vec::new(),
        plugins: PluginsConfig::default(),
        eval_seeds: Vec::new(),
        eval_every: 0,
    };
    let Val::Table(top) = root.get_ref() else {
        return Err(CoreError::Syntax { location: Location::line(file, 1), message: "not a TOML table".into() });
    };
    for (k, v) in top {
        match k.get_ref().as_str() {
            "agent" => read_agent(&mut p, v, &mut cfg),
            "nodes" => match v.get_ref() {
                Val::Array(items) => {
                    for (n, item) in items.iter().enumerate() {
                        if let Some(node) = read_node(&mut p, item, n) {
                            cfg.nodes.push(node);
                        }
                    }
                }
                other => p.schema(v.span().start, format!("`nodes` must be an array of tables ([[nodes]]), got a {}", other.type_name())),
            },
            "edges" => match v.get_ref() {
                Val::Array(items) => {
                    for (n, item) in items.iter().enumerate() {
                        read_edge(&mut p, item, n, &mut cfg.edges);
                    }
                }
                other => p.schema(v.span().start, format!("`edges` must be an array of tables ([[edges]]), got a {}", other.type_name())),
            },
            "plugins" => read_plugins(&mut p, v, &mut cfg.plugins),
            key => p.schema(k.span().start, unknown_key(key, "the agent file", &["agent", "nodes", "edges", "plugins"])),
        }
    }
    if cfg.nodes.is_empty() {
        p.problems.push(Problem::new(ProblemKind::MissingNode, "the agent has no nodes (add [[nodes]] tables)").at(p.lines.at(0)));
    }
    Ok((cfg, p.problems))
}

fn read_plugins(p: &mut Parser<'_>, v: &Spanned<Val>, out: &mut PluginsConfig) {
    let Val::Table(t) = v.get_ref() else {
        p.schema(v.span().start, format!("`plugins` must be a table ([plugins]), got a {}", v.get_ref().type_name()));
        return;
    };
    const KNOWN: [&str; 4] = ["load", "search", "sha256", "allow_panic_abort"];
    out.location = p.lines.at(v.span().start);
    for (k, v) in t {
        let key = k.get_ref().as_str();
        match key {
            "load" | "search" => {
                let list = if key == "load" { &mut out.load } else { &mut out.search };
                match v.get_ref() {
                    Val::Array(items) => {
                        for it in items {
                            if let Some(s) = p.string(it, &format!("plugins.{key} entry"), None) {
                                list.push(s);
                                if key == "load" {
                                    out.load_at.push(p.lines.at(it.span().start));
                                }
                            }
                        }
                    }
                    other => p.schema(v.span().start, format!("plugins.{key} must be an array of strings, got a {}", other.type_name())),
                }
            }
            "sha256" => match v.get_ref() {
                Val::Table(pins) => {
                    for (name, hex) in pins {
                        if let Some(h) = p.string(hex, &format!("plugins.sha256.{}", name.get_ref()), None) {
                            out.sha256.insert(name.get_ref().clone(), h);
                        }
                    }
                }
                other => p.schema(v.span().start, format!("plugins.sha256 must be a table of NAME = \"HEX\", got a {}", other.type_name())),
            },
            "allow_panic_abort" => match v.get_ref() {
                Val::Bool(b) => out.allow_panic_abort = *b,
                other => p.schema(v.span().start, format!("plugins.allow_panic_abort must be true or false, got a {}", other.type_name())),
            },
            _ => p.schema(k.span().start, unknown_key(key, "[plugins]", &KNOWN)),
        }
    }
}

fn read_agent(p: &mut Parser<'_>, v: &Spanned<Val>, cfg: &mut AgentConfig) {
    let Val::Table(t) = v.get_ref() else {
        p.schema(v.span().start, format!("`agent` must be a table ([agent]), got a {}", v.get_ref().type_name()));
        return;
    };
    const KNOWN: [&str; 9] = ["name", "description", "seed", "episodes", "seeds", "executor", "eval_seed", "eval_episodes", "eval_every"];
    let (mut seed, mut episodes, mut seeds) = (None, None, None);
    let (mut eval_seed, mut eval_episodes) = (100u64, 0u64);
    let count = |p: &mut Parser<'_>, v: &Spanned<Val>, what: &str| -> Option<u64> {
        match v.get_ref() {
            Val::Int(i) if (0..=1_000_000).contains(i) => Some(*i as u64),
            Val::Int(i) => {
                let at = p.lines.at(v.span().start);
                p.problems.push(Problem::new(ProblemKind::ParameterRange, format!("{what} must be in 0..=1000000, got {i}")).at(at));
                None
            }
            other => {
                p.schema(v.span().start, format!("{what} must be an integer, got a {}", other.type_name()));
                None
            }
        }
    };
    for (k, v) in t {
        match k.get_ref().as_str() {
            "name" => cfg.name = p.string(v, "agent.name", None),
            "description" => cfg.description = p.string(v, "agent.description", None),
            "seed" => seed = p.seed(v, "agent.seed"),
            "eval_seed" => eval_seed = p.seed(v, "agent.eval_seed").unwrap_or(eval_seed),
            "eval_episodes" => eval_episodes = count(p, v, "agent.eval_episodes").unwrap_or(0),
            "eval_every" => cfg.eval_every = count(p, v, "agent.eval_every").unwrap_or(0),
            "episodes" => match v.get_ref() {
                Val::Int(i) if (1..=1_000_000).contains(i) => episodes = Some(*i as u64),
                Val::Int(i) => {
                    let at = p.lines.at(v.span().start);
                    p.problems.push(Problem::new(ProblemKind::ParameterRange, format!("agent.episodes must be in 1..=1000000, got {i}")).at(at));
                }
                other => p.schema(v.span().start, format!("agent.episodes must be an integer, got a {}", other.type_name())),
            },
            "seeds" => match v.get_ref() {
                Val::Array(items) if !items.is_empty() => {
                    let s: Vec<Option<u64>> = items.iter().map(|it| p.seed(it, "agent.seeds entry")).collect();
                    seeds = s.into_iter().collect::<Option<Vec<u64>>>();
                }
                Val::Array(_) => {
                    let at = p.lines.at(v.span().start);
                    p.problems.push(Problem::new(ProblemKind::ParameterRange, "agent.seeds must not be empty").at(at));
                }
                other => p.schema(v.span().start, format!("agent.seeds must be an array of integers, got a {}", other.type_name())),
            },
            "executor" => {
                if let Some(s) = p.string(v, "agent.executor", None) {
                    match s.parse() {
                        Ok(k) => cfg.executor = k,
                        Err(m) => {
                            let at = p.lines.at(v.span().start);
                            p.problems.push(Problem::new(ProblemKind::ParameterRange, m).at(at));
                        }
                    }
                }
            }
            key => p.schema(k.span().start, unknown_key(key, "[agent]", &KNOWN)),
        }
    }
    cfg.eval_seeds = (0..eval_episodes).map(|i| eval_seed.wrapping_add(i)).collect();
    if let Some(s) = seeds {
        if seed.is_some() || episodes.is_some() {
            p.schema(v.span().start, "[agent] sets `seeds` and also `seed`/`episodes`: use one or the other".into());
        }
        cfg.seeds = s;
    } else {
        let (s, n) = (seed.unwrap_or(0), episodes.unwrap_or(DEFAULT_EPISODES));
        cfg.seeds = (0..n).map(|i| s.wrapping_add(i)).collect();
    }
}

fn read_node(p: &mut Parser<'_>, item: &Spanned<Val>, n: usize) -> Option<NodeConfig> {
    let at = item.span().start;
    let Val::Table(t) = item.get_ref() else {
        p.schema(at, format!("nodes[{n}] must be a table, got a {}", item.get_ref().type_name()));
        return None;
    };
    const KNOWN: [&str; 6] = ["name", "kind", "implementation", "rate", "background", "params"];
    let find = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v);
    let name = match find("name") {
        Some(v) => p.string(v, "node name", None)?,
        None => {
            p.schema(at, format!("nodes[{n}] has no `name`"));
            return None;
        }
    };
    let mut node = NodeConfig {
        name: name.clone(),
        kind: String::new(),
        kind_location: None,
        implementation: String::new(),
        implementation_location: None,
        rate: 1,
        background: false,
        params: Vec::new(),
        location: p.lines.at(at),
    };
    let mut ok = true;
    for (k, v) in t {
        match k.get_ref().as_str() {
            "name" => {}
            "kind" => {
                node.kind_location = p.lines.at(v.span().start);
                match p.string(v, "`kind`", Some(&name)) {
                    Some(s) if s.trim().is_empty() => {
                        p.schema_node(&name, v.span().start, "`kind` is empty: give the node's kind (environment, perception, actor, cost, ...)".to_string());
                        ok = false;
                    }
                    Some(s) => node.kind = s,
                    None => ok = false,
                }
            }
            "implementation" => {
                node.implementation_location = p.lines.at(v.span().start);
                match p.string(v, "`implementation`", Some(&name)) {
                    Some(s) if s.trim().is_empty() => {
                        p.schema_node(&name, v.span().start, "`implementation` is empty: name one (`ami list` shows them by kind)".to_string());
                        ok = false;
                    }
                    Some(s) => node.implementation = s,
                    None => ok = false,
                }
            }
            "rate" => match v.get_ref() {
                Val::Int(r) if (1..=i64::from(u32::MAX)).contains(r) => node.rate = *r as u32,
                Val::Int(r) => {
                    let loc = p.lines.at(v.span().start);
                    p.problems.push(
                        Problem::new(ProblemKind::BadRate, format!("rate must be in 1..={} (run every `rate` ticks), got {r}", u32::MAX)).node(&name).at(loc),
                    );
                }
                other => p.schema_node(&name, v.span().start, format!("`rate` must be an integer, got a {}", other.type_name())),
            },
            "background" => {
                if let Some(b) = p.boolean(v, "`background`", Some(&name)) {
                    node.background = b;
                }
            }
            "params" => match v.get_ref() {
                Val::Table(params) => {
                    for (pk, pv) in params {
                        node.params.push(ParamEntry { name: pk.get_ref().clone(), value: pv.get_ref().to_param(), location: p.lines.at(pk.span().start) });
                    }
                }
                other => p.schema_node(&name, v.span().start, format!("`params` must be a table, got a {}", other.type_name())),
            },
            key => p.schema_node(&name, k.span().start, unknown_key(key, &format!("node `{name}`"), &KNOWN)),
        }
    }
    for (field, missing) in [("kind", find("kind").is_none()), ("implementation", find("implementation").is_none())] {
        if missing {
            p.schema_node(&name, at, format!("node `{name}` has no `{field}`"));
            ok = false;
        }
    }
    if !ok {
        // Still declared (for duplicate-name checks), without ports.
        node.kind.clear();
        node.implementation.clear();
    }
    Some(node)
}

fn read_edge(p: &mut Parser<'_>, item: &Spanned<Val>, n: usize, out: &mut Vec<EdgeSpec>) {
    let at = item.span().start;
    let Val::Table(t) = item.get_ref() else {
        p.schema(at, format!("edges[{n}] must be a table, got a {}", item.get_ref().type_name()));
        return;
    };
    let (mut from, mut to, mut delayed) = (None, Vec::new(), false);
    let mut has_to = false;
    for (k, v) in t {
        match k.get_ref().as_str() {
            "from" => from = p.string(v, "edge `from`", None).map(|s| (s, v.span().start)),
            "to" => {
                has_to = true;
                match v.get_ref() {
                    Val::Str(s) => to.push((s.clone(), v.span().start)),
                    Val::Array(items) => {
                        if items.is_empty() {
                            p.schema(v.span().start, "edge `to` is an empty array".into());
                        }
                        for it in items {
                            if let Some(s) = p.string(it, "edge `to` entry", None) {
                                to.push((s, it.span().start));
                            }
                        }
                    }
                    other => p.schema(v.span().start, format!("edge `to` must be a string or an array of strings, got a {}", other.type_name())),
                }
            }
            "delayed" => delayed = p.boolean(v, "edge `delayed`", None).unwrap_or(false),
            key => p.schema(k.span().start, unknown_key(key, &format!("edges[{n}]"), &["from", "to", "delayed"])),
        }
    }
    let Some((from, _)) = from else {
        if !t.iter().any(|(k, _)| k.get_ref() == "from") {
            p.schema(at, format!("edges[{n}] has no `from`"));
        }
        return;
    };
    if !has_to {
        p.schema(at, format!("edges[{n}] (from `{from}`) has no `to`"));
    }
    for (dst, off) in to {
        out.push(EdgeSpec { from: from.clone(), to: dst, delayed, location: p.lines.at(off) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let l = Lines::new("f", "a\nb\n\nc");
        assert_eq!(l.line(0), 1);
        assert_eq!(l.line(2), 2);
        assert_eq!(l.line(4), 3);
        assert_eq!(l.line(5), 4);
        assert_eq!(l.at(100).map(|l| l.to_string()).as_deref(), Some("f:4"));
    }

    #[test]
    fn every_structural_problem_is_reported() {
        let text = "bogus = 1\n[agent]\nseeds = 3\n[[nodes]]\nname = \"a\"\nkind = 3\nrate = -1\n[[edges]]\nto = \"a.x\"\n";
        let (cfg, problems) = parse_agent(text, "t.toml").unwrap();
        assert_eq!(cfg.nodes.len(), 1);
        let s: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(s.iter().any(|m| m.starts_with("t.toml:1:") && m.contains("bogus")), "{s:?}");
        assert!(s.iter().any(|m| m.starts_with("t.toml:3:") && m.contains("seeds")), "{s:?}");
        assert!(s.iter().any(|m| m.starts_with("t.toml:6:") && m.contains("kind")), "{s:?}");
        assert!(s.iter().any(|m| m.starts_with("t.toml:7:") && m.contains("rate")), "{s:?}");
        assert!(s.iter().any(|m| m.contains("no `from`")), "{s:?}");
    }
}
