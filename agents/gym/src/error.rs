//! [`GymError`]: every way the bridge fails, as typed variants that name
//! the environment id (and the interpreter, where that is the problem).

use std::path::PathBuf;

/// A failure of the Gymnasium bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GymError {
    /// The interpreter could not be started.
    #[error("gym:{id}: cannot start Python `{}`: {reason} (choose one with --python or AMI_PYTHON, or put python3 on PATH)", python.display())]
    PythonMissing {
        /// The environment id.
        id: String,
        /// The interpreter tried.
        python: PathBuf,
        /// Why it did not start.
        reason: String,
    },
    /// The interpreter started but cannot import gymnasium.
    #[error(
        "gym:{id}: Python `{}` cannot import gymnasium ({message}); install it with `{} -m pip install \"gymnasium[mujoco]=={}\"`, or run scripts/gym-venv.sh and set AMI_PYTHON=.venv-gym/bin/python",
        python.display(), python.display(), crate::GYMNASIUM_VERSION
    )]
    GymnasiumMissing {
        /// The environment id.
        id: String,
        /// The interpreter.
        python: PathBuf,
        /// Python's message.
        message: String,
    },
    /// Gymnasium has no environment of that id.
    #[error("gym:{id}: unknown environment id ({message}); `ami envs` lists the ids")]
    UnknownId {
        /// The environment id.
        id: String,
        /// Gymnasium's message.
        message: String,
    },
    /// `gymnasium.make` refused the keyword arguments.
    #[error("gym:{id}: bad kwargs {kwargs}: {message}")]
    BadKwargs {
        /// The environment id.
        id: String,
        /// The kwargs, as JSON.
        kwargs: String,
        /// Python's message.
        message: String,
    },
    /// `gymnasium.make` failed otherwise (a missing dependency such as
    /// mujoco, for instance).
    #[error("gym:{id}: gymnasium.make failed: {message}")]
    Make {
        /// The environment id.
        id: String,
        /// Python's message.
        message: String,
    },
    /// The environment's spaces are not ones the bridge supports.
    #[error("gym:{id}: unsupported space: {message}")]
    Space {
        /// The environment id.
        id: String,
        /// What is unsupported.
        message: String,
    },
    /// An action outside the environment's action space.
    #[error("gym:{id}: action {action:?} is outside the action space {space}: {reason}")]
    ActionOutOfSpace {
        /// The environment id.
        id: String,
        /// The action.
        action: Vec<f32>,
        /// The space, in words.
        space: String,
        /// Which entry and why.
        reason: String,
    },
    /// The environment raised an exception in `reset` or `step`.
    #[error("gym:{id}: {op} raised {message}\n{traceback}")]
    Raised {
        /// The environment id.
        id: String,
        /// `reset` or `step`.
        op: &'static str,
        /// The exception.
        message: String,
        /// Python's traceback.
        traceback: String,
    },
    /// The Python process exited (crashed, was killed) while ami waited
    /// for it.
    #[error("gym:{id}: the Python process exited during {op} ({status}){}", tail(stderr))]
    Exited {
        /// The environment id.
        id: String,
        /// What ami was waiting for.
        op: &'static str,
        /// Its exit status, in words.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The Python process did not answer in time; it was killed.
    #[error("gym:{id}: {op} did not answer within {seconds} s, so the Python process was killed ({}){}", hint(op), tail(stderr))]
    Timeout {
        /// The environment id.
        id: String,
        /// What ami was waiting for.
        op: &'static str,
        /// The limit.
        seconds: f64,
        /// The end of its stderr.
        stderr: String,
    },
    /// An observation or reward that is not finite.
    #[error("gym:{id}: {op} returned a non-finite {what} {values:?}")]
    NonFinite {
        /// The environment id.
        id: String,
        /// `reset` or `step`.
        op: &'static str,
        /// `observation` or `reward`.
        what: &'static str,
        /// The values.
        values: Vec<f64>,
    },
    /// The process answered something the protocol does not allow.
    #[error("gym:{id}: protocol error during {op}: {message}")]
    Protocol {
        /// The environment id.
        id: String,
        /// What ami was waiting for.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The environment was used after it failed (its process is gone).
    #[error("gym:{id}: the environment failed earlier and its process is gone")]
    Gone {
        /// The environment id.
        id: String,
    },
}

fn hint(op: &str) -> &'static str {
    match op {
        "reset" | "step" => "raise `step_timeout` for a slow environment",
        "make" => "starting Python and making the environment took too long; GymConfig::make_timeout sets the limit",
        _ => "the interpreter may be stuck importing gymnasium",
    }
}

fn tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!("; its stderr ended with:\n{s}")
    }
}

impl GymError {
    /// Whether the failure is the user's input (the CLI exits 2): no
    /// interpreter, no gymnasium, an unknown id, bad kwargs, an
    /// unsupported space.
    pub fn is_user_input(&self) -> bool {
        matches!(
            self,
            GymError::PythonMissing { .. }
                | GymError::GymnasiumMissing { .. }
                | GymError::UnknownId { .. }
                | GymError::BadKwargs { .. }
                | GymError::Space { .. }
        )
    }
}

impl From<GymError> for ami_core::CoreError {
    fn from(e: GymError) -> Self {
        ami_core::CoreError::External { user_input: e.is_user_input(), error: Box::new(e) }
    }
}
