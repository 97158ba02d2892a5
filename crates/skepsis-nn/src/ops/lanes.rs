//! What the AVX-512 kernels (`direct`, `routed`) share: the 16-lane f32 vector, whether the
//! machine runs `pulp`'s `V4` (detected at run time), and loading and storing one vector
//! from a slice.

/// f32 lanes of one AVX-512 vector.
pub(crate) const LANES: usize = 16;

/// Whether this machine has the AVX-512 subset `pulp`'s `V4` stands for (never off x86-64).
pub(crate) fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        pulp::x86::V4::try_new().is_some()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The first 16 elements of `s` as one vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn load(s: &[f32]) -> pulp::f32x16 {
    let mut a = [0.0f32; LANES];
    a.copy_from_slice(&s[..LANES]);
    pulp::cast(a)
}

/// Writes `v` into the first 16 elements of `dst`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn store(dst: &mut [f32], v: pulp::f32x16) {
    dst[..LANES].copy_from_slice(&pulp::cast::<pulp::f32x16, [f32; LANES]>(v));
}
