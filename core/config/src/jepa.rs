//! The JEPA from pixels in agent files: a `jepa` perception node (the
//! encoder: images to embeddings) and a `jepa` world model node (the
//! latent predictor, on the fused kernels), both loaded from the
//! safetensors file `ami train --jepa` writes. Planning to a goal image:
//! the environment's goal image reaches the perception node's `goal` port
//! and leaves it encoded, and a cost in the embedding space (`quadratic`
//! with `state_weight`) measures the distance to it.

use std::sync::Arc;

use ami_core::{CoreError, ModelHandle, ParamSpec, ParamType, Result};
use ami_learn::Jepa;

use crate::nodes::{ModelNode, PerceptionNode};
use crate::registry::{BuildContext, Built, Implementation, ModuleKind};

fn load_param() -> ParamSpec {
    ParamSpec::new("load", ParamType::string(), "the JEPA file (safetensors written by `ami train --jepa`; relative to the agent file)").required()
}

/// Loads the JEPA named by `load` and checks it against the task's
/// observation and action widths.
fn load(ctx: &BuildContext<'_>, p: &ami_core::Params) -> Result<Jepa> {
    let task = ctx.task()?;
    let path = ctx.path(p.str_opt("load")?.ok_or_else(|| CoreError::config("load", "is required: the JEPA file"))?);
    let jepa = Jepa::load(&path).map_err(|e| CoreError::config("load", e.to_string()))?;
    let spec = jepa.encoder.spec();
    if spec.input_dim() != task.obs_dim {
        return Err(CoreError::config(
            "load",
            format!(
                "{}: the encoder reads images of {} values ({} channel(s) of {}x{}), the environment `{}` observes {}",
                path.display(),
                spec.input_dim(),
                spec.in_channels,
                spec.size,
                spec.size,
                task.name,
                task.obs_dim
            ),
        ));
    }
    if jepa.predictor.action_dim() != task.action_dim {
        return Err(CoreError::config(
            "load",
            format!(
                "{}: the predictor takes actions of {}, the environment `{}` acts with {}",
                path.display(),
                jepa.predictor.action_dim(),
                task.name,
                task.action_dim
            ),
        ));
    }
    Ok(jepa)
}

/// The `jepa` perception: the encoder of a trained JEPA.
pub fn jepa_perception() -> Implementation {
    Implementation::new(
        ModuleKind::Perception,
        "jepa",
        "a trained JEPA's image encoder: observations (images) and goal images to embeddings; the agent's state is the embedding",
        PerceptionNode::ports(),
        vec![load_param()],
        |ctx, p| {
            let jepa = Arc::new(load(ctx, p)?);
            let embed = jepa.encoder.spec().embed;
            Ok(Built { perceived_dim: Some(embed), ..Built::node(PerceptionNode::new(Arc::new(jepa.perception()))) })
        },
    )
}

/// The `jepa` world model: the latent predictor of a trained JEPA.
pub fn jepa_model() -> Implementation {
    Implementation::new(
        ModuleKind::WorldModel,
        "jepa",
        "a trained JEPA's action-conditioned predictor in its embedding space (a residual ReLU MLP: plans on the fused kernels)",
        ModelNode::ports_for("model"),
        vec![load_param()],
        |ctx, p| {
            let jepa = load(ctx, p)?;
            let state = ctx.task()?.state_dim();
            if state != jepa.encoder.spec().embed {
                return Err(CoreError::config(
                    "load",
                    format!(
                        "the predictor's states are {} wide, the agent's {state}: use this file's encoder as the perception (`implementation = \"jepa\"`)",
                        jepa.encoder.spec().embed
                    ),
                ));
            }
            let model = ModelHandle::of(jepa.world_model()?);
            Ok(Built { model: Some(model.clone()), ..Built::node(ModelNode::new(model, "model")) })
        },
    )
}
