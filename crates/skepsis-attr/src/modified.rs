//! Methods that are one backward walk with modified rules: Guided Backprop, DeconvNet, LRP
//! (any composite), Deep Taylor and Excitation Backprop.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use skepsis_nn::{BackwardPass, Model, RuleMap, Trace};

use crate::canonizer::{Canonizer, MergeBatchNorm};
use crate::composite::{preset, Composite, CompositeParams};
use crate::engine::one_hot;
use crate::gradient::GradientSettings;
use crate::{Attribution, Method, Result, Target};

/// What the walk starts from at the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputSeed {
    /// `one_hot(target)`: gradients, multipliers, winning probabilities.
    OneHot,
    /// `one_hot(target) · logits`: LRP's relevance, which sums to the explained logit.
    Logit,
}

/// Relevance at the input of a backward walk seeded at the explained logit, in chunks of at
/// most `batch_size` samples; `rules` builds the rule map of one chunk from its trace.
/// Returns the map and the explained logits.
pub(crate) fn walk_chunks(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    batch_size: usize,
    seed: OutputSeed,
    mut rules: impl FnMut(usize, &Trace) -> Result<RuleMap>,
) -> Result<(Tensor, Vec<f64>)> {
    let n = x.dims().first().copied().unwrap_or(0);
    if targets.len() != n {
        return Err(crate::Error::InvalidInput(format!(
            "{} targets for {n} inputs",
            targets.len()
        )));
    }
    let chunk = batch_size.max(1);
    let (mut maps, mut logits) = (Vec::new(), Vec::with_capacity(n));
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let trace = model.trace(&x.narrow(0, start, len)?)?;
        let out = trace.logits();
        let hot = one_hot(&targets[start..start + len], out.dims()[1], out)?;
        let explained = (out * &hot)?;
        logits.extend(explained.sum(1)?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        let seed = match seed {
            OutputSeed::OneHot => hot,
            OutputSeed::Logit => explained,
        };
        let map = rules(start, &trace)?;
        maps.push(BackwardPass::new(model, &trace).rules(&map).run(&seed)?.relevance);
        start += len;
    }
    let map = if maps.len() == 1 { maps.remove(0) } else { Tensor::cat(&maps, 0)? };
    Ok((map, logits))
}

/// Guided Backpropagation, Springenberg et al., "Striving for Simplicity", ICLR-W 2015:
/// the gradient of `f_t` with every ReLU's backward replaced by
/// `g_in = [x > 0] · max(g_out, 0)` ([`crate::rules::Guided`]); max pooling routes to the
/// first maximal element of each window.
#[derive(Clone, Debug, Default)]
pub struct GuidedBackprop {
    pub settings: GradientSettings,
}

impl GuidedBackprop {
    /// The guided-backprop map of every sample of `x` for the resolved `targets`.
    pub fn map(&self, model: &Model, x: &Tensor, targets: &[usize]) -> Result<Tensor> {
        let (_, rules) = preset_rules("guided-backprop", model)?;
        let (map, _) = walk_chunks(
            model,
            x,
            targets,
            self.settings.batch_size,
            OutputSeed::OneHot,
            |_, _| Ok(rules.clone()),
        )?;
        Ok(map)
    }
}

impl Method for GuidedBackprop {
    fn name(&self) -> String {
        "guided-backprop".into()
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let map = self.map(model, x, &targets)?;
        Ok(Attribution { map, targets, completeness_delta: None })
    }

    fn propagation(&self, model: &Model) -> Option<Result<(Model, RuleMap)>> {
        Some(preset_rules("guided-backprop", model))
    }
}

/// DeconvNet, Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
/// ECCV 2014: the gradient of `f_t` with every ReLU's backward replaced by
/// `g_in = max(g_out, 0)` ([`crate::rules::Deconv`]); max pooling keeps its forward switches.
#[derive(Clone, Debug, Default)]
pub struct DeconvNet {
    pub settings: GradientSettings,
}

impl Method for DeconvNet {
    fn name(&self) -> String {
        "deconvnet".into()
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let (_, rules) = preset_rules("deconvnet", model)?;
        let (map, _) = walk_chunks(
            model,
            x,
            &targets,
            self.settings.batch_size,
            OutputSeed::OneHot,
            |_, _| Ok(rules.clone()),
        )?;
        Ok(Attribution { map, targets, completeness_delta: None })
    }

    fn propagation(&self, model: &Model) -> Option<Result<(Model, RuleMap)>> {
        Some(preset_rules("deconvnet", model))
    }
}

/// The model and rule map of a parameter-free preset (guided-backprop, deconvnet).
fn preset_rules(name: &str, model: &Model) -> Result<(Model, RuleMap)> {
    let rules = preset(name, &CompositeParams::default())?.rule_map(model)?;
    Ok((model.clone(), rules))
}

fn default_batch_size() -> usize {
    256
}

fn yes() -> bool {
    true
}

/// Settings of [`Lrp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrpSettings {
    /// Most samples per backward pass.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Fold BatchNorm into the preceding convolution first ([`MergeBatchNorm`]).
    #[serde(default = "yes")]
    pub merge_batch_norm: bool,
    /// Relevance at the output.
    pub seed: OutputSeed,
}

impl Default for LrpSettings {
    fn default() -> Self {
        LrpSettings { batch_size: 256, merge_batch_norm: true, seed: OutputSeed::Logit }
    }
}

/// Layer-wise Relevance Propagation, Bach et al., PLoS ONE 2015 (and its relatives Deep
/// Taylor decomposition and Excitation Backprop, which are LRP with particular composites):
/// relevance `R = one_hot(t) · logits` at the output (so it sums to `f_t`), propagated to the
/// input with the rules of a [`Composite`], after merging BatchNorm into the preceding
/// convolution. Max pooling passes relevance to the first maximal element of each window
/// (gradient, as zennit); average pooling and residual `Add` use the norm rule.
#[derive(Clone, Debug)]
pub struct Lrp {
    /// The registry spec (printed as the method name).
    pub name: String,
    pub composite: Composite,
    pub settings: LrpSettings,
}

impl Lrp {
    /// LRP with `composite`, default settings.
    pub fn new(name: impl Into<String>, composite: Composite) -> Self {
        Lrp { name: name.into(), composite, settings: LrpSettings::default() }
    }

    /// Deep Taylor decomposition, Montavon et al., "Explaining nonlinear classification
    /// decisions with deep Taylor decomposition", Pattern Recognition 2017: the z+ rule
    /// (bias ignored) on hidden weighted layers and the bounded z^B rule with input bounds
    /// `[low, high]` on the first (SMERF's "bounded" variant uses low 0, high 1).
    pub fn deep_taylor(low: f64, high: f64, stabilizer: f64) -> Result<Self> {
        let params = CompositeParams { low, high, stabilizer, ..CompositeParams::default() };
        Ok(Lrp::new(format!("deep-taylor:low={low},high={high}"), preset("deep-taylor", &params)?))
    }

    /// Excitation Backprop, Zhang et al., ECCV 2016: winning probabilities from
    /// `P = one_hot(t)` at the output through `W⁺` ([`crate::rules::ExcitationBackprop`]).
    pub fn excitation_backprop(stabilizer: f64) -> Result<Self> {
        let params = CompositeParams { stabilizer, ..CompositeParams::default() };
        let mut lrp = Lrp::new("excitation-backprop", preset("excitation-backprop", &params)?);
        lrp.settings.seed = OutputSeed::OneHot;
        Ok(lrp)
    }
}

impl Lrp {
    /// The model the walk runs on (BatchNorm merged when the settings ask) and its rules.
    fn walk(&self, model: &Model) -> Result<(Model, RuleMap)> {
        let model = if self.settings.merge_batch_norm {
            MergeBatchNorm.apply(model)?
        } else {
            model.clone()
        };
        let rules = self.composite.rule_map(&model)?;
        Ok((model, rules))
    }
}

impl Method for Lrp {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let (model, rules) = self.walk(model)?;
        let (map, _) = walk_chunks(
            &model,
            x,
            &targets,
            self.settings.batch_size,
            self.settings.seed,
            |_, _| Ok(rules.clone()),
        )?;
        Ok(Attribution { map, targets, completeness_delta: None })
    }

    fn propagation(&self, model: &Model) -> Option<Result<(Model, RuleMap)>> {
        Some(self.walk(model))
    }
}
