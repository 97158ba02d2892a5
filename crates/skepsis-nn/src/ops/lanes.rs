//! What the vector kernels (`direct`, `routed`) share: the instruction sets they are compiled
//! for (detected at run time through `pulp`), and loading and storing one vector.
//!
//! The kernels are written once, generic over `pulp::Simd`, and sized from the vector width
//! and the register count of the instruction set they run on: AVX-512 (`pulp`'s `V4`, 16 f32
//! lanes, 32 registers) or AVX2 with FMA (`V3`, 8 lanes, 16 registers). Both sum every value
//! in the same order with fused multiply-adds, so their results are bitwise the same, and the
//! same as the plain loops the kernels fall back to elsewhere.

use pulp::Simd;

/// f32 values of one AVX-512 vector and of one 64-byte cache line: the unit the kernels' data
/// layouts pad channel counts to, whatever the instruction set.
pub(crate) const LANES: usize = 16;

/// An instruction set the vector kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 F/BW/CD/DQ/VL (`pulp::x86::V4`): 16 f32 lanes, 32 registers.
    Avx512,
    /// AVX2 + FMA (`pulp::x86::V3`): 8 f32 lanes, 16 registers.
    Avx2,
}

impl Isa {
    /// Every instruction set, widest first.
    #[cfg(test)]
    pub const ALL: [Isa; 2] = [Isa::Avx512, Isa::Avx2];

    /// The widest instruction set this machine runs, if any (never off x86-64).
    pub fn detect() -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2].into_iter().find(|isa| isa.available())
    }

    /// Whether this machine runs it.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => pulp::x86::V4::try_new().is_some(),
                Isa::Avx2 => pulp::x86::V3::try_new().is_some(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// f32 lanes of one vector.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    /// Runs `op` compiled for this instruction set; `None` where the machine lacks it.
    #[inline]
    pub fn vectorize<Op: pulp::WithSimd>(self, op: Op) -> Option<Op::Output> {
        #[cfg(target_arch = "x86_64")]
        {
            // `Simd::vectorize`, not the inherent method of the same name (which takes a
            // closure without the `Simd` type).
            match self {
                Isa::Avx512 => pulp::x86::V4::try_new().map(|s| Simd::vectorize(s, op)),
                Isa::Avx2 => pulp::x86::V3::try_new().map(|s| Simd::vectorize(s, op)),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = op;
            None
        }
    }
}

/// Whether `S` has the 32 vector registers of AVX-512 (16 otherwise): the register tiles are
/// sized by it.
#[inline(always)]
pub(crate) fn wide_register_file<S: Simd>() -> bool {
    S::REGISTER_COUNT >= 32
}

/// The first `S::F32_LANES` elements of `s` as one vector.
#[inline(always)]
pub(crate) fn load<S: Simd>(s: &[f32]) -> S::f32s {
    let s = &s[..S::F32_LANES];
    // SAFETY: `s` holds `F32_LANES` f32 values, the size of `S::f32s` (a plain-old-data vector
    // of f32 lanes), read without an alignment requirement.
    unsafe { (s.as_ptr() as *const S::f32s).read_unaligned() }
}

/// Writes `v` into the first `S::F32_LANES` elements of `dst`.
#[inline(always)]
pub(crate) fn store<S: Simd>(dst: &mut [f32], v: S::f32s) {
    let dst = &mut dst[..S::F32_LANES];
    // SAFETY: as in `load`, for a write.
    unsafe { (dst.as_mut_ptr() as *mut S::f32s).write_unaligned(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detected_instruction_set_is_available_and_every_available_one_runs() {
        if let Some(isa) = Isa::detect() {
            assert!(isa.available());
        }
        struct Lanes;
        impl pulp::WithSimd for Lanes {
            type Output = usize;
            fn with_simd<S: Simd>(self, _: S) -> usize {
                S::F32_LANES
            }
        }
        for isa in Isa::ALL {
            assert_eq!(isa.vectorize(Lanes), isa.available().then_some(isa.lanes()), "{isa:?}");
        }
    }
}
