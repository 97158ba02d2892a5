//! The seven SMERF setups: their buckets, label rules, ground truth and sample counts
//! (Kim, Plumb, Talwalkar, "Sanity Simulations for Saliency Methods", ICML 2022; wnstlr/SMERF
//! `smerf/simple_fr.py`, `simple_nr.py`, `complex_fr.py`, `complex_cr1.py`..`complex_cr4.py`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::region::RegionKind;

/// The letter drawn in a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Letter {
    /// "A" (class 0 where the label follows the text).
    A,
    /// "B" (class 1 where the label follows the text).
    B,
}

impl Letter {
    /// The character.
    pub fn char(self) -> char {
        match self {
            Letter::A => 'A',
            Letter::B => 'B',
        }
    }

    /// The label a text-based rule assigns: A = 0, B = 1.
    pub fn label(self) -> usize {
        match self {
            Letter::A => 0,
            Letter::B => 1,
        }
    }
}

/// Which objects a scene holds: Box1 (10x10, SMERF's "patch"), the text, Box2 (4x4, SMERF's
/// "switch").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bucket {
    /// Box1 present.
    pub box1: bool,
    /// The letter, if any.
    pub text: Option<Letter>,
    /// Box2 present.
    pub box2: bool,
}

impl Bucket {
    /// A name such as `box1=1,text=A,box2=0`.
    pub fn name(&self) -> String {
        let text = self.text.map_or("none".to_string(), |l| l.char().to_string());
        format!("box1={},text={text},box2={}", u8::from(self.box1), u8::from(self.box2))
    }
}

/// The scene objects, as named in ground-truth regions: `"box1"`, `"text"`, `"box2"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    /// The 10x10 box.
    Box1,
    /// The letter.
    Text,
    /// The 4x4 box.
    Box2,
}

impl Object {
    /// The name used in regions.
    pub fn name(self) -> &'static str {
        match self {
            Object::Box1 => "box1",
            Object::Text => "text",
            Object::Box2 => "box2",
        }
    }
}

/// A SMERF setup (reference-protocols.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SmerfSetup {
    /// 1.11 Simple-FR: label = Box1 present. P: Box1; S: text, Box2.
    SimpleFr,
    /// 2.11 Simple-NR: label = text (A = 0, B = 1). P: text; S: Box1, Box2.
    SimpleNr,
    /// 1.2 Complex-FR: label 1 iff Box1 and Box2. Label 1: P Box1 + Box2, S text; label 0:
    /// P none, S text.
    ComplexFr,
    /// 3.71 Complex-CR1: Box2 present -> (Box1 ? 0 : 1), else by text. No Box2: P text, S Box1;
    /// Box2: P Box1 + Box2, S text.
    ComplexCr1,
    /// 3.72 Complex-CR2: Box1 present -> (Box2 ? 0 : 1), else by text. No Box1: P text, S Box2;
    /// Box1: P Box2 + Box1, S text.
    ComplexCr2,
    /// 3.73 Complex-CR3: Box2 absent -> (Box1 ? 0 : 1), else by text. No Box2: P Box1, S text;
    /// Box2: P text + Box2, S Box1.
    ComplexCr3,
    /// 3.74 Complex-CR4: Box1 absent -> (Box2 ? 0 : 1), else by text. No Box1: P Box2, S text;
    /// Box1: P text + Box1, S Box2.
    ComplexCr4,
}

impl SmerfSetup {
    /// All setups in the paper's order.
    pub const ALL: [SmerfSetup; 7] = [
        SmerfSetup::SimpleFr,
        SmerfSetup::SimpleNr,
        SmerfSetup::ComplexFr,
        SmerfSetup::ComplexCr1,
        SmerfSetup::ComplexCr2,
        SmerfSetup::ComplexCr3,
        SmerfSetup::ComplexCr4,
    ];

    /// The paper's id, e.g. `"3.71"`.
    pub fn id(self) -> &'static str {
        match self {
            SmerfSetup::SimpleFr => "1.11",
            SmerfSetup::SimpleNr => "2.11",
            SmerfSetup::ComplexFr => "1.2",
            SmerfSetup::ComplexCr1 => "3.71",
            SmerfSetup::ComplexCr2 => "3.72",
            SmerfSetup::ComplexCr3 => "3.73",
            SmerfSetup::ComplexCr4 => "3.74",
        }
    }

    /// The paper's name, e.g. `"Complex-CR1"`.
    pub fn name(self) -> &'static str {
        match self {
            SmerfSetup::SimpleFr => "Simple-FR",
            SmerfSetup::SimpleNr => "Simple-NR",
            SmerfSetup::ComplexFr => "Complex-FR",
            SmerfSetup::ComplexCr1 => "Complex-CR1",
            SmerfSetup::ComplexCr2 => "Complex-CR2",
            SmerfSetup::ComplexCr3 => "Complex-CR3",
            SmerfSetup::ComplexCr4 => "Complex-CR4",
        }
    }

    /// The setup with id `id` (`"1.11"`, `"2.11"`, `"1.2"`, `"3.71"`..`"3.74"`).
    pub fn from_id(id: &str) -> Result<Self> {
        SmerfSetup::ALL.into_iter().find(|s| s.id() == id).ok_or_else(|| {
            Error::parameter(
                "SmerfSetup::from_id",
                "setup",
                format!(
                    "unknown SMERF setup '{id}' (known: 1.11, 2.11, 1.2, 3.71, 3.72, 3.73, 3.74)"
                ),
            )
        })
    }

    /// Whether this is a simple setup (1.11, 2.11).
    pub fn is_simple(self) -> bool {
        matches!(self, SmerfSetup::SimpleFr | SmerfSetup::SimpleNr)
    }

    /// The buckets in SMERF's generation order: 1.11 and 1.2 loop Box1 {0,1} x text {none,A,B}
    /// x Box2 {0,1} (12 buckets); 2.11 loops Box2 x Box1 x text {A,B} (8); 3.7x loop Box2 x
    /// Box1 x text {none,A,B} and skip the two text-less buckets whose label would follow the
    /// text (10).
    pub fn buckets(self) -> Vec<Bucket> {
        let texts = [None, Some(Letter::A), Some(Letter::B)];
        let mut out = Vec::new();
        match self {
            SmerfSetup::SimpleFr | SmerfSetup::ComplexFr => {
                for box1 in [false, true] {
                    for text in texts {
                        for box2 in [false, true] {
                            out.push(Bucket { box1, text, box2 });
                        }
                    }
                }
            }
            _ => {
                for box2 in [false, true] {
                    for box1 in [false, true] {
                        for text in texts {
                            let b = Bucket { box1, text, box2 };
                            let by_text = match self {
                                SmerfSetup::SimpleNr => true,
                                SmerfSetup::ComplexCr1 => !box2,
                                SmerfSetup::ComplexCr2 => !box1,
                                SmerfSetup::ComplexCr3 => box2,
                                _ => box1, // ComplexCr4
                            };
                            if text.is_some() || !by_text {
                                out.push(b);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The label of an image of `bucket` (see each variant); `None` where the rule needs the
    /// text and there is none (such buckets are not generated).
    pub fn label(self, b: Bucket) -> Option<usize> {
        let text = b.text.map(Letter::label);
        let by = |cond: bool, present: bool| if cond { Some(usize::from(!present)) } else { text };
        match self {
            SmerfSetup::SimpleFr => Some(usize::from(b.box1)),
            SmerfSetup::SimpleNr => text,
            SmerfSetup::ComplexFr => Some(usize::from(b.box1 && b.box2)),
            SmerfSetup::ComplexCr1 => by(b.box2, b.box1),
            SmerfSetup::ComplexCr2 => by(b.box1, b.box2),
            SmerfSetup::ComplexCr3 => by(!b.box2, b.box1),
            SmerfSetup::ComplexCr4 => by(!b.box1, b.box2),
        }
    }

    /// The ground truth of an image of `bucket`: objects with their kind, before dropping the
    /// absent ones (the caller drops objects the scene does not hold).
    pub fn ground_truth(self, b: Bucket) -> Vec<(Object, RegionKind)> {
        use Object::{Box1, Box2, Text};
        let (p, s): (&[Object], &[Object]) = match self {
            SmerfSetup::SimpleFr => (&[Box1], &[Text, Box2]),
            SmerfSetup::SimpleNr => (&[Text], &[Box1, Box2]),
            SmerfSetup::ComplexFr if b.box1 && b.box2 => (&[Box1, Box2], &[Text]),
            SmerfSetup::ComplexFr => (&[], &[Text]),
            SmerfSetup::ComplexCr1 if b.box2 => (&[Box1, Box2], &[Text]),
            SmerfSetup::ComplexCr1 => (&[Text], &[Box1]),
            SmerfSetup::ComplexCr2 if b.box1 => (&[Box2, Box1], &[Text]),
            SmerfSetup::ComplexCr2 => (&[Text], &[Box2]),
            SmerfSetup::ComplexCr3 if b.box2 => (&[Text, Box2], &[Box1]),
            SmerfSetup::ComplexCr3 => (&[Box1], &[Text]),
            SmerfSetup::ComplexCr4 if b.box1 => (&[Text, Box1], &[Box2]),
            SmerfSetup::ComplexCr4 => (&[Box2], &[Text]),
        };
        p.iter()
            .map(|&o| (o, RegionKind::Primary))
            .chain(s.iter().map(|&o| (o, RegionKind::Secondary)))
            .collect()
    }

    /// The paper's number of (train, test) images of `bucket`: 1.11 2000/500; 2.11 5000/500;
    /// 1.2 2000/500 with 3x the training images for Box1 & Box2; 3.7x 15000/400.
    pub fn paper_counts(self, b: Bucket) -> (usize, usize) {
        match self {
            SmerfSetup::SimpleFr => (2000, 500),
            SmerfSetup::SimpleNr => (5000, 500),
            SmerfSetup::ComplexFr if b.box1 && b.box2 => (6000, 500),
            SmerfSetup::ComplexFr => (2000, 500),
            _ => (15000, 400),
        }
    }
}
