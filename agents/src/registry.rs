//! The registry agent files are checked against: the composition layer's
//! built-ins ([`ami_config::builtins`]), the built-in tasks as environments
//! (`pendulum`, `cartpole`, `pointmass`), and the `workload` environment.

use std::sync::Arc;

use ami_config::nodes::{EnvNode, ModelNode};
use ami_config::{Built, Implementation, ModuleKind, Registry, TaskResources};
use ami_core::{CoreError, Environment, ModelHandle, ParamSpec, ParamType, ParamValue, WorldModel};

use crate::tasks::{maze, pointmass, wall, PointMass, TaskKind};
use crate::workload::WorkloadEnv;

fn task_resources(kind: TaskKind, goal: Option<[f32; 2]>) -> (EnvNode, TaskResources) {
    let mut spec = kind.spec();
    let mut goal_state = spec.goal.clone();
    if let (Some(g), TaskKind::PointMass) = (goal, kind) {
        let env = PointMass::new().with_goal(g);
        goal_state = Some(env.goal_state().to_vec());
        spec.env = Box::new(env);
    }
    let cost_goal = goal_state.clone();
    let cost: Arc<dyn Fn() -> ami_core::Cost + Send + Sync> = Arc::new(move || {
        let mut c = match kind {
            TaskKind::PointMass => pointmass::cost(),
            k => k.spec().cost,
        };
        c.set_goal(cost_goal.clone().map(ndarray::Array1::from));
        c
    });
    let res = TaskResources {
        name: kind.name().to_string(),
        obs_dim: spec.env.obs_dim(),
        action_dim: spec.env.action_dim(),
        space: spec.env.action_space(),
        model: Some(ModelHandle::new(spec.model)),
        cost: Some(cost),
        goal: goal_state,
        perceived_dim: None,
    };
    (EnvNode::new(spec.env), res)
}

/// Adds the built-in tasks as environments: `pendulum`, `cartpole`,
/// `pointmass` (each supplies its true dynamics and intrinsic cost),
/// `workload` (a workload file's MLP from `s0` to `goal`) and `gym` (a
/// Python Gymnasium environment through the bridge, planned with a
/// built-in task's model and cost).
pub fn register_tasks(registry: &mut Registry) {
    let _ = registry.register(Implementation::new(
        ModuleKind::Environment,
        "gym",
        "a Gymnasium environment in a Python child process (ami-gym), planned with a built-in task's model and cost",
        EnvNode::ports(),
        gym_params(),
        |_, p| gym_env(p),
    ));
    for kind in TaskKind::ALL {
        let params = match kind {
            TaskKind::PointMass => {
                vec![ParamSpec::new("goal", ParamType::FloatList { min_len: 2, max_len: 2 }, "goal position [x, y] (default [1, 1])")]
            }
            _ => Vec::new(),
        };
        // The task names are distinct from one another and from the core's.
        let _ = registry.register(Implementation::new(ModuleKind::Environment, kind.name(), kind.summary(), EnvNode::ports(), params, move |_, p| {
            let goal = p.f32_list_opt("goal")?.map(|g| [g[0], g[1]]);
            let (node, task) = task_resources(kind, goal);
            Ok(Built { task: Some(task), ..Built::node(node) })
        }));
    }
    let _ = registry.register(Implementation::new(
        ModuleKind::Environment,
        "maze",
        "a 2-D point mass in a maze with wall collisions, from `start` to `goal` (success within 0.5 of the goal)",
        EnvNode::ports(),
        vec![
            ParamSpec::new("maze", ParamType::string(), "a built-in maze (u-maze, four-rooms, rooms-4x4) or a maze text file (relative to the agent file)")
                .default(ParamValue::Str("u-maze".into())),
            ParamSpec::new("start", ParamType::FloatList { min_len: 2, max_len: 2 }, "start position [x, y] (default: the built-in maze's)"),
            ParamSpec::new("goal", ParamType::FloatList { min_len: 2, max_len: 2 }, "goal position [x, y] (default: the built-in maze's)"),
            ParamSpec::new("max_steps", ParamType::int(1, 1_000_000), "steps per episode").default(ParamValue::Int(maze::MAX_STEPS as i64)),
            ParamSpec::new(
                "pairs",
                ParamType::Str { choices: vec!["fixed".into(), "rooms".into()] },
                "`fixed`: every episode from `start` to `goal`; `rooms`: each episode's start and goal drawn from its seed, in different rooms",
            )
            .default(ParamValue::Str("fixed".into())),
        ],
        maze_env,
    ));
    let _ = registry.register(Implementation::new(
        ModuleKind::Environment,
        "wall",
        "a point mass in two rooms split by a wall with a door, seen from above as a 64x64 grayscale image; the goal is an image; success within 0.05 of the goal (in the simulator)",
        EnvNode::ports(),
        wall_params(),
        wall_env,
    ));
    let _ = registry.register(Implementation::new(
        ModuleKind::WorldModel,
        "maze-coarse",
        "a high planning level's model of a maze: the position [x, y], actions displacements of up to `reach` cells sliding along the walls (the map is given)",
        ModelNode::ports_for("model"),
        vec![
            ParamSpec::new("maze", ParamType::string(), "a built-in maze or a maze file (default: the environment's maze)"),
            ParamSpec::new("reach", ParamType::float(0.01, 1000.0), "cells moved a step at action 1").default(ParamValue::Float(2.0)),
        ],
        |ctx, p| {
            let which = env_maze(ctx, p)?;
            let m = Arc::new(load_maze(ctx, &which)?);
            let handle = ModelHandle::of(maze::MazeCoarseModel::new(m, p.f64("reach")?));
            Ok(Built { model: Some(handle.clone()), ..Built::node(ModelNode::new(handle, "model")) })
        },
    ));
    let _ = registry.register(Implementation::new(
        ModuleKind::WorldModel,
        "maze-rooms",
        "a top planning level's model of a maze of rooms: the position [x, y], an action a direction that moves to the centre of the room a doorway there leads to (the rooms and doors are given)",
        ModelNode::ports_for("model"),
        vec![ParamSpec::new("maze", ParamType::string(), "a built-in maze or a maze file (default: the environment's maze)")],
        |ctx, p| {
            let which = env_maze(ctx, p)?;
            let m = load_maze(ctx, &which)?;
            let model = maze::MazeRoomsModel::new(&m).map_err(|e| CoreError::config("maze", e))?;
            let handle = ModelHandle::of(model);
            Ok(Built { model: Some(handle.clone()), ..Built::node(ModelNode::new(handle, "model")) })
        },
    ));
    let _ = registry.register(Implementation::new(
        ModuleKind::Environment,
        "workload",
        "a workload file's residual MLP as the world, from its s0 towards its goal (reward: minus the step energy)",
        EnvNode::ports(),
        vec![
            ParamSpec::new("path", ParamType::string(), "the workload safetensors file (relative to the agent file)").required(),
            ParamSpec::new("max_steps", ParamType::int(1, 1_000_000), "steps per episode").default(ParamValue::Int(50)),
        ],
        |ctx, p| {
            let path = ctx.path(p.str_opt("path")?.unwrap_or_default());
            let (env, wl) = WorkloadEnv::load(&path, p.usize("max_steps")?).map_err(|e| CoreError::config("path", e.to_string()))?;
            let (s, a, goal) = (wl.model.state_dim(), wl.model.action_dim(), wl.goal.clone());
            let task = TaskResources {
                name: "workload".into(),
                obs_dim: env.obs_dim(),
                action_dim: env.action_dim(),
                space: env.action_space(),
                model: Some(ModelHandle::of(wl.model.clone())),
                cost: Some(Arc::new(move || {
                    let mut c = ami_core::Cost::new();
                    // A fresh cost has no terms, so the name is free.
                    let _ = c.add_intrinsic(Arc::new(ami_planners::goal_energy(s, a)), 1.0);
                    c.set_goal(goal.clone());
                    c
                })),
                goal: wl.goal.as_ref().map(|g| g.to_vec()),
                perceived_dim: None,
            };
            Ok(Built { task: Some(task), ..Built::node(EnvNode::new(Box::new(env))) })
        },
    ));
}

/// Start and goal of the built-in mazes: opposite ends, where the
/// straight line to the goal runs into walls.
fn maze_defaults(name: &str) -> Option<([f64; 2], [f64; 2])> {
    match name {
        "u-maze" => Some(([1.5, 1.5], [1.5, 3.5])),
        "four-rooms" => Some(([1.5, 1.5], [11.5, 11.5])),
        "rooms-4x4" => Some(([1.5, 1.5], [19.5, 19.5])),
        _ => None,
    }
}

/// The `maze` parameter, or the environment's maze when it is one.
fn env_maze(ctx: &ami_config::BuildContext<'_>, p: &ami_core::Params) -> ami_core::Result<String> {
    match p.str_opt("maze")? {
        Some(m) => Ok(m.to_string()),
        None => {
            let task = ctx.task()?;
            task.name.strip_prefix("maze:").map(str::to_string).ok_or_else(|| {
                CoreError::config("maze", format!("the environment `{}` is not a maze: name the maze (`maze = \"four-rooms\"` or a file)", task.name))
            })
        }
    }
}

/// A built-in maze by name, or a maze file (relative to the agent file).
fn load_maze(ctx: &ami_config::BuildContext<'_>, which: &str) -> ami_core::Result<maze::Maze> {
    if let Some(m) = maze::Maze::builtin(which) {
        return Ok(m);
    }
    let path = ctx.path(which);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CoreError::config("maze", format!("`{which}` is neither a built-in maze (u-maze, four-rooms, rooms-4x4) nor a readable file ({}: {e})", path.display()))
    })?;
    maze::Maze::parse(&text, &path.display().to_string()).map_err(|e| CoreError::config("maze", e.to_string()))
}

/// Builds a `maze` environment node with its true dynamics and cost.
fn maze_env(ctx: &ami_config::BuildContext<'_>, p: &ami_core::Params) -> ami_core::Result<Built> {
    let which = p.str_opt("maze")?.unwrap_or("u-maze").to_string();
    let m = load_maze(ctx, &which)?;
    let defaults = maze_defaults(&which);
    let point = |field: &str, default: Option<[f64; 2]>| -> ami_core::Result<[f64; 2]> {
        match p.f32_list_opt(field)? {
            Some(v) => Ok([f64::from(v[0]), f64::from(v[1])]),
            None => default.ok_or_else(|| CoreError::config(field, format!("maze `{which}` has no default {field}: give [x, y]"))),
        }
    };
    let (start, goal) = (point("start", defaults.map(|d| d.0))?, point("goal", defaults.map(|d| d.1))?);
    let m = Arc::new(m);
    let mut env = maze::MazeEnv::new(m.clone(), start, goal, p.usize("max_steps")?).map_err(|e| CoreError::config("start", e))?;
    // Goals drawn per episode reach the agent from the environment's
    // `goal` port; the task has no fixed goal then.
    let per_episode = p.str_opt("pairs")? == Some("rooms");
    if per_episode {
        env = env.with_room_pairs();
    }
    let goal_state = (!per_episode).then(|| env.goal_state().to_vec());
    let cost_goal = goal_state.clone();
    let task = TaskResources {
        name: env.name().to_string(),
        obs_dim: 4,
        action_dim: 2,
        space: env.action_space(),
        model: Some(ModelHandle::of(maze::MazeModel::new(m))),
        cost: Some(Arc::new(move || {
            let mut c = maze::cost();
            c.set_goal(cost_goal.clone().map(ndarray::Array1::from));
            c
        })),
        goal: goal_state,
        perceived_dim: None,
    };
    Ok(Built { task: Some(task), ..Built::node(EnvNode::new(Box::new(env))) })
}

fn wall_params() -> Vec<ParamSpec> {
    let d = wall::WallConfig::default();
    let f = |name: &str, lo: f64, hi: f64, v: f64, doc: &str| ParamSpec::new(name, ParamType::float(lo, hi), doc).default(ParamValue::Float(v));
    vec![
        f("wall_x", 0.0, 1.0, d.wall_x, "the wall's centre line, x in (0, 1)"),
        f("wall_width", 0.0, 0.5, d.wall_width, "the wall's thickness"),
        f("door_y", 0.0, 1.0, d.door_y, "the door's centre, y in (0, 1)"),
        f("door_width", 0.0, 1.0, d.door_width, "the door's height"),
        f("step_size", 0.0, 0.5, d.step_size, "displacement per step at force 1 (below wall_width)"),
        ParamSpec::new("start", ParamType::FloatList { min_len: 2, max_len: 2 }, "start position [x, y] (with `pairs = \"fixed\"`)"),
        ParamSpec::new("goal", ParamType::FloatList { min_len: 2, max_len: 2 }, "goal position [x, y] (with `pairs = \"fixed\"`)"),
        ParamSpec::new("max_steps", ParamType::int(1, 1_000_000), "steps per episode").default(ParamValue::Int(d.max_steps as i64)),
        ParamSpec::new(
            "pairs",
            ParamType::Str { choices: vec!["fixed".into(), "rooms".into()] },
            "`rooms`: each episode's start and goal drawn from its seed, in different rooms; `fixed`: every episode from `start` to `goal`",
        )
        .default(ParamValue::Str("rooms".into())),
    ]
}

fn wall_env(_: &ami_config::BuildContext<'_>, p: &ami_core::Params) -> ami_core::Result<Built> {
    let d = wall::WallConfig::default();
    let point = |field: &str, default: [f64; 2]| -> ami_core::Result<[f64; 2]> { Ok(p.f64_list_opt(field)?.map_or(default, |v| [v[0], v[1]])) };
    let fixed = p.str_opt("pairs")? == Some("fixed");
    let cfg = wall::WallConfig {
        wall_x: p.f64("wall_x")?,
        wall_width: p.f64("wall_width")?,
        door_y: p.f64("door_y")?,
        door_width: p.f64("door_width")?,
        step_size: p.f64("step_size")?,
        max_steps: p.usize("max_steps")?,
        start: point("start", d.start)?,
        goal: point("goal", d.goal)?,
        ..d
    };
    let probe = if fixed {
        cfg.clone()
    } else {
        let (start, goal) = cfg.pair(0);
        wall::WallConfig { start, goal, ..cfg.clone() }
    };
    probe.check()?;
    let mut env = wall::WallEnv::new(if fixed { cfg } else { probe })?;
    if !fixed {
        env = env.with_pairs();
    }
    // The goal is an image: it reaches the agent from the environment's
    // `goal` port (through a perception node, which encodes it).
    let task = TaskResources {
        name: "wall".into(),
        obs_dim: env.obs_dim(),
        action_dim: 2,
        space: env.action_space(),
        model: None,
        cost: None,
        goal: None,
        perceived_dim: None,
    };
    Ok(Built { task: Some(task), ..Built::node(EnvNode::new(Box::new(env))) })
}

/// The built-in task whose model and cost plan on Gymnasium environment
/// `id` (`Pendulum-v1`: pendulum, `CartPole-v1`: cartpole).
pub fn gym_task(id: &str) -> Option<TaskKind> {
    match id {
        "Pendulum-v1" => Some(TaskKind::Pendulum),
        "CartPole-v1" => Some(TaskKind::CartPole),
        _ => None,
    }
}

/// The planner `ami run --env gym:ID` uses when none is given: one over
/// discrete actions for the ids whose action space is `Discrete`
/// (`CartPole-v1`: `cem-discrete`), `cem` otherwise.
pub fn gym_default_planner(id: &str) -> &'static str {
    match gym_task(id) {
        Some(TaskKind::CartPole) => "cem-discrete",
        _ => "cem",
    }
}

/// The `gym` environment's parameters.
fn gym_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("id", ParamType::string(), "the Gymnasium id (`Pendulum-v1`; `module:Id-v0` imports `module` first)").required(),
        ParamSpec::new("kwargs", ParamType::Structured { what: "a table of gymnasium.make keyword arguments".into() }, "keyword arguments of gymnasium.make"),
        ParamSpec::new(
            "task",
            ParamType::string(),
            "the built-in task whose model and cost agents plan with (default: Pendulum-v1 -> pendulum, CartPole-v1 -> cartpole; other ids: none, so the agent names its world_model and cost nodes)",
        ),
        ParamSpec::new(
            "actions",
            ParamType::Structured { what: "a list of actions, each a list of numbers".into() },
            "for a Discrete(n) space: the n actions as the world model takes them (e.g. [[-1.0], [0.0], [1.0]]); the bridge sends the index of the nearest",
        ),
        ParamSpec::new("python", ParamType::string(), "the interpreter with gymnasium (default: $AMI_PYTHON, else python3)"),
        ParamSpec::new("step_timeout", ParamType::float(0.001, 86_400.0), "seconds one reset or step may take before the process is killed")
            .default(ParamValue::Float(30.0)),
    ]
}

/// Builds a `gym` environment node with the model and cost of the built-in
/// task its `task` names (or its id implies), or with none: then the
/// agent's actor names a `world_model` node and a `cost` node.
fn gym_env(p: &ami_core::Params) -> ami_core::Result<Built> {
    let id = p.str_opt("id")?.unwrap_or_default().to_string();
    let kind = match p.str_opt("task")? {
        Some(t) => Some(t.parse::<TaskKind>().map_err(|e| CoreError::config("task", e.to_string()))?),
        None => gym_task(&id),
    };
    let mut cfg = ami_gym::GymConfig::new(id.clone());
    if let Some(py) = p.str_opt("python")? {
        cfg.python = py.into();
    }
    cfg.step_timeout = std::time::Duration::from_secs_f64(p.f64("step_timeout")?);
    if let Some(serde_json::Value::Object(m)) = p.deserialize::<serde_json::Value>("kwargs")? {
        cfg.kwargs = m;
    }
    if kind == Some(TaskKind::CartPole) {
        // Gymnasium's two actions are the built-in task's two forces: the
        // choices the discrete planners search.
        let f = crate::tasks::cartpole::FORCE_MAG as f32;
        cfg.discrete_actions = vec![vec![-f], vec![f]];
    }
    let actions = p.deserialize::<Vec<Vec<f32>>>("actions")?;
    if let Some(a) = &actions {
        cfg.discrete_actions = a.clone();
    }
    let env = ami_gym::GymEnv::make(cfg)?;
    if actions.is_some() && !matches!(env.info().action_space, ami_gym::SpaceInfo::Discrete { .. }) {
        return Err(CoreError::config(
            "actions",
            format!("applies to a Discrete action space; gym:{id}'s is {}", ami_gym::space_words(&env.info().action_space)),
        ));
    }
    let Some(kind) = kind else {
        let task = TaskResources {
            name: format!("gym:{id}"),
            obs_dim: env.obs_dim(),
            action_dim: env.action_dim(),
            space: env.action_space(),
            model: None,
            cost: None,
            goal: None,
            perceived_dim: None,
        };
        return Ok(Built { task: Some(task), ..Built::node(EnvNode::new(Box::new(env))) });
    };
    let (_, mut task) = task_resources(kind, None);
    if env.obs_dim() != task.obs_dim || env.action_dim() != task.action_dim {
        return Err(CoreError::config(
            "task",
            format!(
                "gym:{id} has observations of width {} and actions of width {}, task `{}` {} and {}",
                env.obs_dim(),
                env.action_dim(),
                kind.name(),
                task.obs_dim,
                task.action_dim
            ),
        ));
    }
    task.name = format!("gym:{id}");
    task.space = env.action_space();
    Ok(Built { task: Some(task), ..Built::node(EnvNode::new(Box::new(env))) })
}

/// The registry agent files are checked against: the composition layer's
/// built-ins and the built-in tasks. (The plugin host adds plugin modules
/// to it with `ami_plugin_host::register_plugin`.)
pub fn registry() -> Registry {
    let mut r = Registry::with_core_builtins();
    r.add(register_tasks);
    r
}
