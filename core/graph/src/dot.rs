//! Graphviz DOT export of a [`Graph`].

use crate::graph::Graph;
use crate::value::PortType;

impl Graph {
    /// The graph in Graphviz DOT: nodes as records listing their ports,
    /// delayed edges dashed, references to shared models and memories
    /// dotted (labelled `uses`), rates shown when not 1.
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace(['{', '}', '|', '<', '>'], "_");
        let mut out = String::from("digraph agent {\n  rankdir=LR;\n  node [shape=record, fontname=\"Helvetica\"];\n");
        for (i, name) in self.names.iter().enumerate() {
            let ins: Vec<String> = self.ports[i].inputs.iter().map(|p| format!("<i_{0}> {0}", esc(&p.name))).collect();
            let outs: Vec<String> = self.ports[i].outputs.iter().map(|p| format!("<o_{0}> {0}", esc(&p.name))).collect();
            let mut rate = if self.rates[i] != 1 { format!("\\n(every {} ticks)", self.rates[i]) } else { String::new() };
            if self.background[i] {
                rate.push_str("\\n(background)");
            }
            out.push_str(&format!("  \"{0}\" [label=\"{{{{{1}}}|{0}{rate}|{{{2}}}}}\"];\n", esc(name), ins.join("|"), outs.join("|")));
        }
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edge exists");
            let spec = &self.graph[e];
            let fp = spec.from.split_once('.').map_or("", |x| x.1);
            let tp = spec.to.split_once('.').map_or("", |x| x.1);
            let reference = self.ports[self.graph[a]].outputs.iter().find(|p| p.name == fp).is_some_and(|p| matches!(p.ty, PortType::Model | PortType::Memory));
            let style = if reference {
                " [style=dotted, arrowhead=odot, label=\"uses\"]"
            } else if spec.delayed {
                " [style=dashed, label=\"delayed\"]"
            } else {
                ""
            };
            out.push_str(&format!(
                "  \"{}\":\"o_{}\" -> \"{}\":\"i_{}\"{style};\n",
                esc(&self.names[self.graph[a]]),
                esc(fp),
                esc(&self.names[self.graph[b]]),
                esc(tp)
            ));
        }
        out.push_str("}\n");
        out
    }
}
