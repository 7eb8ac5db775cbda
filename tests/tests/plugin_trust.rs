//! What the plugin host trusts: a bare plugin name is looked up in the
//! configured search paths only (a library planted in the working directory
//! under that name is not loaded), and a SHA-256 pin whose key names no
//! plugin loaded is refused rather than ignored. Its own test binary: it
//! changes the working directory.

use ami_agents::{load, AgentSource, LoadOptions};
use ami_plugin_host::{PluginHost, PluginHostConfig};

#[test]
fn a_library_in_the_working_directory_is_not_loaded_by_name_and_stray_pins_are_refused() {
    let dir = ami_tests::plugin_dir();
    let lib = dir.join(format!("{}acrobot{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    let cwd = tempfile::tempdir().unwrap();
    // Planted under the bare name, and under the library's file name.
    std::fs::copy(&lib, cwd.path().join("acrobot")).unwrap();
    std::fs::copy(&lib, cwd.path().join(lib.file_name().unwrap())).unwrap();
    std::env::set_current_dir(cwd.path()).unwrap();
    let e = PluginHost::new(PluginHostConfig::default()).load("acrobot").unwrap_err().to_string();
    assert!(e.contains("no library for it was found"), "{e}");
    // Configured, the search path is used.
    let mut h = PluginHost::new(PluginHostConfig { search_paths: vec![dir.to_path_buf()], ..Default::default() });
    let p = h.load("acrobot").unwrap();
    assert_eq!(p.info().path.as_deref(), Some(std::fs::canonicalize(&lib).unwrap().as_path()));

    // A pin whose key is misspelt pins nothing: refused, naming it.
    let digest = p.info().sha256.clone().unwrap();
    let mut host = PluginHostConfig { search_paths: vec![dir.to_path_buf()], ..Default::default() };
    host.sha256.insert("acrobto".into(), digest.clone());
    let opts = LoadOptions { plugins: vec!["acrobot".into()], host };
    let source = AgentSource::PluginTask { env: "plugin:acrobot/env".into(), planner: "cem".into() };
    let e = match load(&source, &opts) {
        Ok(_) => panic!("a stray pin must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("`acrobto` name no plugin loaded (loaded: `acrobot`)"), "{e}");
    // Spelt right, it verifies and the agent loads.
    let mut host = PluginHostConfig { search_paths: vec![dir.to_path_buf()], ..Default::default() };
    host.sha256.insert("acrobot".into(), digest);
    let opts = LoadOptions { plugins: vec!["acrobot".into()], host };
    assert!(load(&source, &opts).is_ok());
    // Pins with no plugin at all are refused too.
    let mut host = PluginHostConfig::default();
    host.sha256.insert("testkti".into(), "0".repeat(64));
    let e = match load(&AgentSource::Default, &LoadOptions { plugins: vec![], host }) {
        Ok(_) => panic!("a pin without plugins must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("`testkti` name no plugin loaded (loaded: none)"), "{e}");
}
