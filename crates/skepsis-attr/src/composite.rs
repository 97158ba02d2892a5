//! Composites: which rule goes on which node (zennit's `Composite`).
//!
//! A [`Composite`] is an ordered list of `(selector, rule)` entries; each node gets the rule
//! of the first entry whose [`Selector`] matches it, and the gradient when none does.
//! Selectors pick nodes by name, by layer kind, or by position (the first weighted layer).
//! Composites hold rule values, not closures, so they print (`Display`) exactly what they do.
//! Presets are a table of named constructors, [`PRESETS`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use skepsis_nn::{Model, Rule, RuleMap};

use crate::rules::{
    AlphaBeta, Deconv, Epsilon, ExcitationBackprop, Flat, Gamma, Guided, Norm, Pass, ZBox, ZPlus,
    DEFAULT_STABILIZER,
};
use crate::{Error, Result};

/// Picks the nodes an entry applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The node with this name (must exist in the model).
    Name(String),
    /// Every node whose layer kind (as in `model.json`: `conv2d`, `linear`, `relu`, ...) is
    /// one of these.
    Kinds(Vec<String>),
    /// The first weighted (Linear or Conv2d) node in graph order, provided its kind is one of
    /// these. zennit's `SpecialFirstLayerMapComposite`: `EpsilonGammaBox` puts ZBox on the
    /// first layer only when that layer is a convolution.
    FirstAffine(Vec<String>),
}

impl Selector {
    /// Every node of one of `kinds`.
    pub fn kinds(kinds: &[&str]) -> Self {
        Selector::Kinds(kinds.iter().map(|k| k.to_string()).collect())
    }

    /// The first weighted node, if its kind is one of `kinds`.
    pub fn first_affine(kinds: &[&str]) -> Self {
        Selector::FirstAffine(kinds.iter().map(|k| k.to_string()).collect())
    }

    fn matches(&self, model: &Model, index: usize, first_affine: Option<usize>) -> bool {
        let node = &model.nodes()[index];
        match self {
            Selector::Name(name) => node.name == *name,
            Selector::Kinds(kinds) => kinds.iter().any(|k| k == node.layer.kind()),
            Selector::FirstAffine(kinds) => {
                first_affine == Some(index) && kinds.iter().any(|k| k == node.layer.kind())
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Name(name) => write!(f, "node '{name}'"),
            Selector::Kinds(kinds) => write!(f, "{}", kinds.join("|")),
            Selector::FirstAffine(kinds) => {
                write!(f, "first weighted layer if {}", kinds.join("|"))
            }
        }
    }
}

/// An ordered list of `(selector, rule)` entries; the first match wins, unmatched nodes get
/// the gradient.
#[derive(Clone, Debug)]
pub struct Composite {
    name: String,
    entries: Vec<(Selector, Arc<dyn Rule>)>,
}

const WEIGHTED: &[&str] = &["linear", "conv2d"];
const ACTIVATIONS: &[&str] = &["relu", "leaky_relu", "tanh", "sigmoid", "identity", "dropout"];
const POOLS_AND_SUMS: &[&str] = &["avgpool2d", "adaptive_avgpool2d", "add"];

impl Composite {
    /// An empty composite (the gradient everywhere) called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Composite { name: name.into(), entries: Vec::new() }
    }

    /// Appends an entry (it applies only to nodes no earlier entry matched).
    pub fn with(mut self, selector: Selector, rule: impl Rule + 'static) -> Self {
        self.entries.push((selector, Arc::new(rule)));
        self
    }

    /// zennit's `layer_map_base`: the pass rule on activations and identities, the norm rule
    /// on average pooling and residual `Add` (relevance split proportionally to the inputs'
    /// contributions). Max pooling, Flatten, Reshape, Concat and an unmerged BatchNorm keep
    /// the gradient (max pooling: winner-take-all to the first maximal element).
    pub fn with_lrp_base(self, stabilizer: f64) -> Result<Self> {
        Ok(self
            .with(Selector::kinds(ACTIVATIONS), Pass)
            .with(Selector::kinds(POOLS_AND_SUMS), Norm::new(stabilizer)?))
    }

    /// One rule on every Linear and Conv2d node (including the first) plus the LRP base map.
    pub fn uniform(name: impl Into<String>, rule: impl Rule + 'static) -> Result<Self> {
        Composite::new(name).with(Selector::kinds(WEIGHTED), rule).with_lrp_base(DEFAULT_STABILIZER)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entries in priority order.
    pub fn entries(&self) -> &[(Selector, Arc<dyn Rule>)] {
        &self.entries
    }

    /// The rule of every node of `model`. Fails if a name selector names no node.
    pub fn rule_map(&self, model: &Model) -> Result<RuleMap> {
        for (selector, _) in &self.entries {
            if let Selector::Name(name) = selector {
                model.node_index(name)?;
            }
        }
        let first_affine = model.affine_nodes().first().copied();
        let mut map = RuleMap::gradient(model);
        for index in 0..model.nodes().len() {
            if let Some((_, rule)) =
                self.entries.iter().find(|(s, _)| s.matches(model, index, first_affine))
            {
                map.set(index, rule.clone())?;
            }
        }
        Ok(map)
    }
}

impl fmt::Display for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name)?;
        for (selector, rule) in &self.entries {
            write!(f, "{selector} -> {}; ", rule.name())?;
        }
        f.write_str("otherwise gradient")
    }
}

/// Parameters of the preset composites (the defaults are zennit's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeParams {
    /// Epsilon of the Epsilon rule on dense layers; `None`: the preset's own default (1e-6
    /// for the zennit presets, 0.1 for iNNvestigate's preset A/B).
    pub epsilon: Option<f64>,
    /// Gamma of `epsilon-gamma-box`.
    pub gamma: f64,
    /// Input bounds of ZBox (`epsilon-gamma-box`, `deep-taylor`).
    pub low: f64,
    pub high: f64,
    /// Stabilizer of every other rule.
    pub stabilizer: f64,
}

impl Default for CompositeParams {
    fn default() -> Self {
        CompositeParams {
            epsilon: None,
            gamma: 0.25,
            low: 0.0,
            high: 1.0,
            stabilizer: DEFAULT_STABILIZER,
        }
    }
}

impl CompositeParams {
    fn epsilon(&self) -> Result<Epsilon> {
        Ok(Epsilon::new(self.epsilon.unwrap_or(DEFAULT_STABILIZER))?)
    }
}

/// A named composite constructor.
pub struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn(&CompositeParams) -> Result<Composite>,
}

impl fmt::Debug for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Epsilon on linear layers, `conv` on conv layers, optionally Flat on the first layer, plus
/// the LRP base map.
fn epsilon_conv(
    name: &str,
    p: &CompositeParams,
    epsilon: Epsilon,
    conv: impl Rule + 'static,
    flat: bool,
) -> Result<Composite> {
    let mut c = Composite::new(name);
    if flat {
        c = c.with(Selector::first_affine(WEIGHTED), Flat::new(p.stabilizer)?);
    }
    c.with(Selector::kinds(&["conv2d"]), conv)
        .with(Selector::kinds(&["linear"]), epsilon)
        .with_lrp_base(p.stabilizer)
}

fn innvestigate_epsilon(p: &CompositeParams) -> Result<Epsilon> {
    Ok(Epsilon::new(p.epsilon.unwrap_or(0.1))?)
}

/// The preset composites.
pub static PRESETS: &[Preset] = &[
    Preset {
        name: "epsilon-plus",
        summary: "zennit EpsilonPlus: conv ZPlus, linear Epsilon",
        build: |p| epsilon_conv("epsilon-plus", p, p.epsilon()?, ZPlus::new(p.stabilizer)?, false),
    },
    Preset {
        name: "epsilon-plus-flat",
        summary: "zennit EpsilonPlusFlat: first layer Flat, conv ZPlus, linear Epsilon",
        build: |p| {
            epsilon_conv("epsilon-plus-flat", p, p.epsilon()?, ZPlus::new(p.stabilizer)?, true)
        },
    },
    Preset {
        name: "epsilon-gamma-box",
        summary: "zennit EpsilonGammaBox: first conv ZBox(low, high), conv Gamma, linear Epsilon",
        build: |p| {
            Composite::new("epsilon-gamma-box")
                .with(Selector::first_affine(&["conv2d"]), ZBox::new(p.low, p.high, p.stabilizer)?)
                .with(Selector::kinds(&["conv2d"]), Gamma::new(p.gamma, p.stabilizer)?)
                .with(Selector::kinds(&["linear"]), p.epsilon()?)
                .with_lrp_base(p.stabilizer)
        },
    },
    Preset {
        name: "epsilon-alpha2-beta1",
        summary: "zennit EpsilonAlpha2Beta1: conv AlphaBeta(2, 1), linear Epsilon",
        build: |p| {
            let ab = AlphaBeta::new(2.0, 1.0, p.stabilizer)?;
            epsilon_conv("epsilon-alpha2-beta1", p, p.epsilon()?, ab, false)
        },
    },
    Preset {
        name: "epsilon-alpha2-beta1-flat",
        summary: "zennit EpsilonAlpha2Beta1Flat: first layer Flat, conv AlphaBeta(2, 1), linear Epsilon",
        build: |p| {
            let ab = AlphaBeta::new(2.0, 1.0, p.stabilizer)?;
            epsilon_conv("epsilon-alpha2-beta1-flat", p, p.epsilon()?, ab, true)
        },
    },
    Preset {
        name: "preset-a-flat",
        summary: "iNNvestigate LRPSequentialPresetAFlat (SMERF): first layer Flat, conv AlphaBeta(1, 0), dense Epsilon (0.1)",
        build: |p| {
            let ab = AlphaBeta::new(1.0, 0.0, p.stabilizer)?;
            epsilon_conv("preset-a-flat", p, innvestigate_epsilon(p)?, ab, true)
        },
    },
    Preset {
        name: "preset-b-flat",
        summary: "iNNvestigate LRPSequentialPresetBFlat (SMERF): first layer Flat, conv AlphaBeta(2, 1), dense Epsilon (0.1)",
        build: |p| {
            let ab = AlphaBeta::new(2.0, 1.0, p.stabilizer)?;
            epsilon_conv("preset-b-flat", p, innvestigate_epsilon(p)?, ab, true)
        },
    },
    Preset {
        name: "deep-taylor",
        summary: "Deep Taylor (Montavon et al. 2017): first layer ZBox(low, high), other weighted layers z+ (no bias)",
        build: |p| {
            Composite::new("deep-taylor")
                .with(Selector::first_affine(WEIGHTED), ZBox::new(p.low, p.high, p.stabilizer)?)
                .with(Selector::kinds(WEIGHTED), ZPlus::new(p.stabilizer)?.ignoring_bias())
                .with_lrp_base(p.stabilizer)
        },
    },
    Preset {
        name: "guided-backprop",
        summary: "Guided Backprop (Springenberg et al. 2015): Guided on ReLUs, gradient elsewhere",
        build: |_| Ok(Composite::new("guided-backprop").with(Selector::kinds(&["relu"]), Guided)),
    },
    Preset {
        name: "deconvnet",
        summary: "DeconvNet (Zeiler & Fergus 2014): Deconv on ReLUs, gradient elsewhere",
        build: |_| Ok(Composite::new("deconvnet").with(Selector::kinds(&["relu"]), Deconv)),
    },
    Preset {
        name: "excitation-backprop",
        summary: "Excitation Backprop (Zhang et al. 2016): W+ winner probabilities on weighted layers",
        build: |p| {
            Composite::new("excitation-backprop")
                .with(Selector::kinds(WEIGHTED), ExcitationBackprop::new(p.stabilizer)?)
                .with_lrp_base(p.stabilizer)
        },
    },
];

/// The preset called `name`, built with `params`.
pub fn preset(name: &str, params: &CompositeParams) -> Result<Composite> {
    let p = PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        Error::InvalidSpec(format!(
            "unknown composite '{name}' (known: {})",
            PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
        ))
    })?;
    (p.build)(params)
}
