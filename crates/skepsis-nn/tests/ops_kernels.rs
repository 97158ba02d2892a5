//! Tests of the CPU convolution and pooling kernels (`skepsis_nn::ops`) against naive
//! references, candle's own kernels and central finite differences (in f64).

use candle_core::{DType, Device, Tensor};
use skepsis_nn::ops::conv::{
    conv2d, conv2d_input_vjp, conv2d_relu_max_pool2d, conv2d_relu_max_pool2d_input_vjp,
    conv2d_relu_max_pool2d_traced, conv2d_weight_vjp,
};
use skepsis_nn::ops::pool::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_vjp, avg_pool2d, avg_pool2d_vjp, max_pool2d,
    max_pool2d_of_relu, max_pool2d_relu_vjp, max_pool2d_vjp,
};
use skepsis_nn::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use skepsis_nn::Error;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Deterministic splitmix64 stream of values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.next_f64()).collect()
    }
}

fn tensor(data: Vec<f64>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(data, dims, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Asserts `|a - b| <= tol * (1 + max|b|)` element-wise.
fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = 1.0 + b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}: element {i}: {x} vs {y} (tol {tol})");
    }
}

// ---------------------------------------------------------------------------------------------
// Convolution
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: [usize; 2],
    stride: [usize; 2],
    /// top, bottom, left, right
    pad: [usize; 4],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

impl Case {
    fn spec(&self) -> Conv2dSpec {
        let [top, bottom, left, right] = self.pad;
        Conv2dSpec {
            stride: self.stride,
            padding: Padding2d { top, bottom, left, right },
            dilation: self.dilation,
            groups: self.groups,
        }
    }
    fn x_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    fn w_dims(&self) -> [usize; 4] {
        [self.o, self.c / self.groups, self.k[0], self.k[1]]
    }
    fn out_hw(&self) -> [usize; 2] {
        self.spec().output_hw([self.h, self.w], self.k).unwrap()
    }
    /// candle's conv2d can express it: one padding, stride and dilation for both axes.
    fn candle_expressible(&self) -> bool {
        self.pad.iter().all(|&p| p == self.pad[0])
            && self.stride[0] == self.stride[1]
            && self.dilation[0] == self.dilation[1]
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
) -> Case {
    Case { n, c, h, w, o, k, stride, pad, dilation, groups, bias }
}

fn cases() -> Vec<Case> {
    vec![
        case(1, 2, 5, 6, 3, [3, 3], [1, 1], [0; 4], [1, 1], 1, true),
        case(3, 3, 7, 6, 2, [2, 3], [2, 2], [1; 4], [1, 1], 1, false),
        case(1, 4, 6, 7, 4, [3, 2], [1, 2], [0, 2, 1, 0], [2, 1], 2, true),
        case(3, 4, 5, 5, 4, [3, 3], [1, 1], [2; 4], [2, 2], 4, false),
        case(3, 4, 6, 6, 8, [3, 3], [2, 2], [1, 0, 0, 1], [1, 1], 4, true),
        case(3, 4, 4, 5, 3, [1, 1], [1, 1], [0; 4], [1, 1], 1, true),
        case(1, 4, 4, 5, 6, [1, 1], [1, 1], [0; 4], [1, 1], 2, false),
        case(3, 2, 7, 7, 3, [1, 1], [2, 2], [0; 4], [1, 1], 1, true),
        case(3, 2, 6, 9, 2, [1, 3], [2, 1], [1, 0, 2, 2], [1, 2], 1, true),
        case(1, 1, 3, 3, 2, [3, 3], [1, 1], [1; 4], [1, 1], 1, false),
        case(3, 2, 4, 4, 2, [4, 4], [1, 1], [0; 4], [1, 1], 1, true),
        case(1, 2, 7, 8, 3, [2, 2], [3, 3], [0, 1, 1, 0], [1, 1], 1, false),
        case(3, 6, 5, 4, 4, [2, 2], [1, 2], [1, 1, 0, 0], [2, 1], 2, true),
        // 16 output channels per group and output planes of 25, 9 and 15 positions: the
        // channels-last forward product (plain, grouped and strided, pointwise).
        case(3, 2, 5, 5, 16, [3, 3], [1, 1], [1; 4], [1, 1], 1, true),
        case(2, 4, 6, 6, 32, [3, 3], [2, 2], [1, 0, 0, 1], [1, 1], 2, false),
        case(2, 3, 3, 5, 16, [1, 1], [1, 1], [0; 4], [1, 1], 1, true),
        // 16-row column matrices (4 channels x 2x2 taps per group) and output planes of 40
        // and 30 positions: the channels-last input VJP (asymmetric padding; grouped).
        case(2, 4, 5, 6, 3, [2, 2], [1, 1], [1, 0, 2, 1], [1, 1], 1, true),
        case(2, 8, 4, 5, 4, [2, 2], [1, 1], [1; 4], [1, 1], 2, false),
        // 16 and 32 channels on either side, unit strides, one group, a batch of 3: the
        // direct correlation (f32 on AVX-512) for the forward pass and the input VJP, with
        // paddings below the kernel size on every side (asymmetric) and 48 = 32 + 16 output
        // channels (two tile widths).
        case(3, 16, 4, 5, 32, [2, 3], [1, 1], [1, 0, 2, 1], [1, 1], 1, true),
        case(3, 32, 3, 4, 16, [3, 3], [1, 1], [2, 2, 0, 1], [1, 1], 1, false),
        case(3, 16, 3, 3, 48, [3, 1], [1, 1], [1; 4], [1, 1], 1, true),
    ]
}

struct Operands {
    x: Vec<f64>,
    w: Vec<f64>,
    b: Option<Vec<f64>>,
}

fn operands(cs: &Case, seed: u64) -> Operands {
    let mut rng = Rng(seed);
    let x = rng.vec(cs.x_dims().iter().product());
    let w = rng.vec(cs.w_dims().iter().product());
    let b = cs.bias.then(|| rng.vec(cs.o));
    Operands { x, w, b }
}

/// Direct seven-loop convolution in f64.
fn naive_conv(cs: &Case, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let [oh, ow] = cs.out_hw();
    let (cg, og) = (cs.c / cs.groups, cs.o / cs.groups);
    let [kh, kw] = cs.k;
    let mut y = vec![0.0; cs.n * cs.o * oh * ow];
    for n in 0..cs.n {
        for o in 0..cs.o {
            let grp = o / og;
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[o]);
                    for c in 0..cg {
                        for p in 0..kh {
                            for q in 0..kw {
                                let ih = (i * cs.stride[0] + p * cs.dilation[0]) as isize
                                    - cs.pad[0] as isize;
                                let iw = (j * cs.stride[1] + q * cs.dilation[1]) as isize
                                    - cs.pad[2] as isize;
                                if ih < 0 || iw < 0 || ih >= cs.h as isize || iw >= cs.w as isize {
                                    continue;
                                }
                                let xc = grp * cg + c;
                                let xv =
                                    x[((n * cs.c + xc) * cs.h + ih as usize) * cs.w + iw as usize];
                                acc += w[((o * cg + c) * kh + p) * kw + q] * xv;
                            }
                        }
                    }
                    y[((n * cs.o + o) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
    y
}

fn run_conv(cs: &Case, x: &[f64], w: &[f64], b: Option<&[f64]>, dtype: DType) -> Vec<f64> {
    let xt = tensor(x.to_vec(), &cs.x_dims()).to_dtype(dtype).unwrap();
    let wt = tensor(w.to_vec(), &cs.w_dims()).to_dtype(dtype).unwrap();
    let bt = b.map(|b| tensor(b.to_vec(), &[cs.o]).to_dtype(dtype).unwrap());
    let y = conv2d(&xt, &wt, bt.as_ref(), &cs.spec()).unwrap();
    assert_eq!(y.dtype(), dtype);
    let [oh, ow] = cs.out_hw();
    assert_eq!(y.dims(), [cs.n, cs.o, oh, ow]);
    values(&y)
}

#[test]
fn conv2d_matches_naive_reference_f64_and_f32() {
    for (idx, cs) in cases().iter().enumerate() {
        let ops = operands(cs, 100 + idx as u64);
        let expected = naive_conv(cs, &ops.x, &ops.w, ops.b.as_deref());
        let got = run_conv(cs, &ops.x, &ops.w, ops.b.as_deref(), DType::F64);
        assert_close(&got, &expected, 1e-12, &format!("f64 case {idx} {cs:?}"));
        let got32 = run_conv(cs, &ops.x, &ops.w, ops.b.as_deref(), DType::F32);
        assert_close(&got32, &expected, 1e-5, &format!("f32 case {idx} {cs:?}"));
    }
}

#[test]
fn conv2d_matches_candle_for_symmetric_padding() {
    let mut checked = 0;
    for (idx, cs) in cases().iter().enumerate().filter(|(_, c)| c.candle_expressible()) {
        let ops = operands(cs, 200 + idx as u64);
        for dtype in [DType::F64, DType::F32] {
            let xt = tensor(ops.x.clone(), &cs.x_dims()).to_dtype(dtype).unwrap();
            let wt = tensor(ops.w.clone(), &cs.w_dims()).to_dtype(dtype).unwrap();
            let mut expected =
                xt.conv2d(&wt, cs.pad[0], cs.stride[0], cs.dilation[0], cs.groups).unwrap();
            if let Some(b) = &ops.b {
                let bt = tensor(b.clone(), &[cs.o, 1, 1]).to_dtype(dtype).unwrap();
                expected = expected.broadcast_add(&bt).unwrap();
            }
            let got = run_conv(cs, &ops.x, &ops.w, ops.b.as_deref(), dtype);
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            assert_close(&got, &values(&expected), tol, &format!("case {idx} {dtype:?}"));
        }
        checked += 1;
    }
    assert!(checked >= 6, "too few candle-expressible cases: {checked}");
}

/// `<g, conv(x)>` as a function of the input (or the weight), for finite differences.
fn objective(cs: &Case, x: &[f64], w: &[f64], b: Option<&[f64]>, g: &[f64]) -> f64 {
    dot(&run_conv(cs, x, w, b, DType::F64), g)
}

#[test]
fn conv2d_input_vjp_matches_central_differences() {
    const H: f64 = 1e-3;
    for (idx, cs) in cases().iter().enumerate() {
        let ops = operands(cs, 300 + idx as u64);
        let [oh, ow] = cs.out_hw();
        let g = Rng(400 + idx as u64).vec(cs.n * cs.o * oh * ow);
        let gt = tensor(g.clone(), &[cs.n, cs.o, oh, ow]);
        let wt = tensor(ops.w.clone(), &cs.w_dims());
        let vjp = conv2d_input_vjp(&gt, &wt, &cs.x_dims(), &cs.spec()).unwrap();
        assert_eq!(vjp.dims(), cs.x_dims());
        let vjp = values(&vjp);
        let b = ops.b.as_deref();
        let fd: Vec<f64> = (0..ops.x.len())
            .map(|e| {
                let (mut xp, mut xm) = (ops.x.clone(), ops.x.clone());
                xp[e] += H;
                xm[e] -= H;
                (objective(cs, &xp, &ops.w, b, &g) - objective(cs, &xm, &ops.w, b, &g)) / (2.0 * H)
            })
            .collect();
        assert_close(&vjp, &fd, 1e-8, &format!("input vjp case {idx} {cs:?}"));
        // The same in f32 against the f64 result.
        let vjp32 = conv2d_input_vjp(
            &gt.to_dtype(DType::F32).unwrap(),
            &wt.to_dtype(DType::F32).unwrap(),
            &cs.x_dims(),
            &cs.spec(),
        )
        .unwrap();
        assert_eq!(vjp32.dtype(), DType::F32);
        assert_close(&values(&vjp32), &vjp, 1e-5, &format!("f32 input vjp case {idx}"));
    }
}

#[test]
fn conv2d_weight_vjp_matches_central_differences() {
    const H: f64 = 1e-3;
    for (idx, cs) in cases().iter().enumerate() {
        let ops = operands(cs, 500 + idx as u64);
        let [oh, ow] = cs.out_hw();
        let g = Rng(600 + idx as u64).vec(cs.n * cs.o * oh * ow);
        let gt = tensor(g.clone(), &[cs.n, cs.o, oh, ow]);
        let xt = tensor(ops.x.clone(), &cs.x_dims());
        let vjp = conv2d_weight_vjp(&xt, &gt, &cs.w_dims(), &cs.spec()).unwrap();
        assert_eq!(vjp.dims(), cs.w_dims());
        let vjp = values(&vjp);
        let b = ops.b.as_deref();
        let fd: Vec<f64> = (0..ops.w.len())
            .map(|e| {
                let (mut wp, mut wm) = (ops.w.clone(), ops.w.clone());
                wp[e] += H;
                wm[e] -= H;
                (objective(cs, &ops.x, &wp, b, &g) - objective(cs, &ops.x, &wm, b, &g)) / (2.0 * H)
            })
            .collect();
        assert_close(&vjp, &fd, 1e-8, &format!("weight vjp case {idx} {cs:?}"));
        let vjp32 = conv2d_weight_vjp(
            &xt.to_dtype(DType::F32).unwrap(),
            &gt.to_dtype(DType::F32).unwrap(),
            &cs.w_dims(),
            &cs.spec(),
        )
        .unwrap();
        assert_close(&values(&vjp32), &vjp, 1e-5, &format!("f32 weight vjp case {idx}"));
    }
}

/// A layer shaped like the second convolution of the SC MNIST CNN (smaller channels), f32.
fn batch_case(n: usize) -> Case {
    case(n, 8, 14, 14, 16, [5, 5], [1, 1], [2; 4], [1, 1], 1, true)
}

fn rel_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}: element {i}: {x} vs {y}");
    }
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn batched_equals_unbatched() {
    // 17 images: more than one weight-gradient chunk and more images than threads.
    let cs = batch_case(17);
    let ops = operands(&cs, 7);
    let x = tensor(ops.x, &cs.x_dims()).to_dtype(DType::F32).unwrap();
    let w = tensor(ops.w, &cs.w_dims()).to_dtype(DType::F32).unwrap();
    let b = tensor(ops.b.unwrap(), &[cs.o]).to_dtype(DType::F32).unwrap();
    let spec = cs.spec();
    let y = conv2d(&x, &w, Some(&b), &spec).unwrap();
    let g = (y.ones_like().unwrap() * 0.5).unwrap().add(&y.sin().unwrap()).unwrap();
    let dx = conv2d_input_vjp(&g, &w, &cs.x_dims(), &spec).unwrap();
    let dw = conv2d_weight_vjp(&x, &g, &cs.w_dims(), &spec).unwrap();
    let mut dw_sum = vec![0f32; cs.w_dims().iter().product()];
    for i in 0..cs.n {
        let xi = x.narrow(0, i, 1).unwrap();
        let gi = g.narrow(0, i, 1).unwrap();
        let mut dims = cs.x_dims();
        dims[0] = 1;
        let yi = conv2d(&xi, &w, Some(&b), &spec).unwrap();
        rel_close(&f32s(&yi), &f32s(&y.narrow(0, i, 1).unwrap()), 1e-6, "forward");
        let dxi = conv2d_input_vjp(&gi, &w, &dims, &spec).unwrap();
        rel_close(&f32s(&dxi), &f32s(&dx.narrow(0, i, 1).unwrap()), 1e-6, "input vjp");
        let dwi = conv2d_weight_vjp(&xi, &gi, &cs.w_dims(), &spec).unwrap();
        for (s, v) in dw_sum.iter_mut().zip(f32s(&dwi)) {
            *s += v;
        }
    }
    rel_close(&dw_sum, &f32s(&dw), 1e-5, "weight vjp (sum over images)");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let cs = batch_case(11);
    let ops = operands(&cs, 9);
    let x = tensor(ops.x, &cs.x_dims()).to_dtype(DType::F32).unwrap();
    let w = tensor(ops.w, &cs.w_dims()).to_dtype(DType::F32).unwrap();
    let spec = cs.spec();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let y = conv2d(&x, &w, None, &spec).unwrap();
            let dx = conv2d_input_vjp(&y, &w, &cs.x_dims(), &spec).unwrap();
            let dw = conv2d_weight_vjp(&x, &y, &cs.w_dims(), &spec).unwrap();
            (f32s(&y), f32s(&dx), f32s(&dw))
        })
    };
    let (y1, dx1, dw1) = run(1);
    let (y3, dx3, dw3) = run(3);
    rel_close(&y3, &y1, 1e-6, "forward");
    rel_close(&dx3, &dx1, 1e-6, "input vjp");
    // The weight gradient is reduced in fixed chunks and fixed order.
    assert_eq!(dw1, dw3, "weight vjp must be bitwise independent of the thread count");
}

/// The geometries the direct correlation takes in f32 (where the machine has AVX-512), each
/// run in a one-thread and a two-thread pool (the correlation runs one image per task), against
/// the float64 kernels (themselves checked against the naive loop and finite differences).
#[test]
fn direct_correlation_geometries_match_float64() {
    let geometries = [
        // The SC CNN's conv1 and conv2 (conv1's input VJP, 1 channel, stays with gemm).
        case(2, 1, 28, 28, 32, [5, 5], [1, 1], [2; 4], [1, 1], 1, true),
        case(2, 32, 14, 14, 64, [5, 5], [1, 1], [2; 4], [1, 1], 1, true),
        // Tile widths 64 + 32 + 16 channels; 3x3 with padding 1; no padding at all.
        case(3, 16, 9, 7, 112, [3, 3], [1, 1], [1; 4], [1, 1], 1, false),
        case(2, 48, 6, 5, 16, [2, 2], [1, 1], [0; 4], [1, 1], 1, true),
        // Padding as large as the kernel: the forward pass is direct, the input VJP is not.
        case(2, 16, 4, 4, 16, [2, 2], [1, 1], [2, 0, 0, 2], [1, 1], 1, true),
    ];
    for (idx, cs) in geometries.iter().enumerate() {
        let ops = operands(cs, 700 + idx as u64);
        let [oh, ow] = cs.out_hw();
        let g = Rng(800 + idx as u64).vec(cs.n * cs.o * oh * ow);
        let spec = cs.spec();
        let (x, w) = (tensor(ops.x.clone(), &cs.x_dims()), tensor(ops.w.clone(), &cs.w_dims()));
        let b = ops.b.clone().map(|b| tensor(b, &[cs.o]));
        let gt = tensor(g, &[cs.n, cs.o, oh, ow]);
        let y64 = values(&conv2d(&x, &w, b.as_ref(), &spec).unwrap());
        let dx64 = values(&conv2d_input_vjp(&gt, &w, &cs.x_dims(), &spec).unwrap());
        let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let (x32, w32, g32, b32) = (f32(&x), f32(&w), f32(&gt), b.as_ref().map(f32));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (y, dx) = pool.install(|| {
                let y = conv2d(&x32, &w32, b32.as_ref(), &spec).unwrap();
                let dx = conv2d_input_vjp(&g32, &w32, &cs.x_dims(), &spec).unwrap();
                (values(&y), values(&dx))
            });
            let what = format!("case {idx} {cs:?}, {threads} thread(s)");
            assert_close(&y, &y64, 1e-5, &format!("forward, {what}"));
            assert_close(&dx, &dx64, 1e-5, &format!("input vjp, {what}"));
        }
    }
}

#[test]
fn non_contiguous_inputs_are_accepted() {
    let cs = case(2, 3, 5, 5, 2, [3, 3], [1, 1], [1; 4], [1, 1], 1, false);
    let ops = operands(&cs, 11);
    // Build x transposed in H/W and transpose back: a non-contiguous view of the same values.
    let xt = tensor(ops.x.clone(), &cs.x_dims()).transpose(2, 3).unwrap().contiguous().unwrap();
    let x_view = xt.transpose(2, 3).unwrap();
    assert!(!x_view.is_contiguous());
    let w = tensor(ops.w.clone(), &cs.w_dims());
    let got = values(&conv2d(&x_view, &w, None, &cs.spec()).unwrap());
    assert_close(&got, &naive_conv(&cs, &ops.x, &ops.w, None), 1e-12, "non-contiguous");
}

fn conv_err(x: &[usize], w: &[usize], spec: Conv2dSpec) -> Error {
    let xt = Tensor::zeros(x, DType::F32, &Device::Cpu).unwrap();
    let wt = Tensor::zeros(w, DType::F32, &Device::Cpu).unwrap();
    match conv2d(&xt, &wt, None, &spec) {
        Ok(y) => panic!("expected an error for x {x:?} w {w:?} {spec:?}, got {:?}", y.dims()),
        Err(e) => e,
    }
}

#[test]
fn conv_rejects_bad_input_with_typed_errors() {
    let d = Conv2dSpec::default();
    assert!(matches!(conv_err(&[3, 5, 5], &[2, 3, 3, 3], d), Error::InvalidInput(_)));
    assert!(matches!(conv_err(&[1, 3, 5, 5], &[2, 3, 3], d), Error::InvalidInput(_)));
    assert!(matches!(conv_err(&[1, 3, 5, 5], &[2, 2, 3, 3], d), Error::ShapeMismatch { .. }));
    assert!(matches!(conv_err(&[1, 3, 5, 5], &[2, 3, 0, 3], d), Error::InvalidInput(_)));
    let g2 = Conv2dSpec { groups: 2, ..d };
    assert!(matches!(conv_err(&[1, 3, 5, 5], &[2, 1, 3, 3], g2), Error::InvalidParameter { .. }));
    let g4 = Conv2dSpec { groups: 4, ..d };
    assert!(matches!(conv_err(&[1, 4, 5, 5], &[6, 1, 3, 3], g4), Error::InvalidParameter { .. }));
    let g0 = Conv2dSpec { groups: 0, ..d };
    assert!(matches!(conv_err(&[1, 4, 5, 5], &[6, 4, 3, 3], g0), Error::InvalidParameter { .. }));
    let s0 = Conv2dSpec { stride: [1, 0], ..d };
    assert!(matches!(conv_err(&[1, 3, 5, 5], &[2, 3, 3, 3], s0), Error::InvalidParameter { .. }));
    let d0 = Conv2dSpec { dilation: [0, 1], ..d };
    assert!(matches!(conv_err(&[1, 3, 5, 5], &[2, 3, 3, 3], d0), Error::InvalidParameter { .. }));
    // Windows that do not fit the padded input.
    assert!(matches!(conv_err(&[1, 3, 2, 5], &[2, 3, 3, 3], d), Error::InvalidInput(_)));
    let dil = Conv2dSpec { dilation: [1, 3], ..d };
    assert!(matches!(conv_err(&[1, 3, 5, 6], &[2, 3, 3, 3], dil), Error::InvalidInput(_)));
    // ... but padding can make them fit.
    let padded = Conv2dSpec { padding: Padding2d { top: 1, bottom: 0, left: 0, right: 0 }, ..d };
    let x = Tensor::zeros((1, 3, 2, 5), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::zeros((2, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(conv2d(&x, &w, None, &padded).unwrap().dims(), [1, 2, 1, 3]);

    // dtypes
    let w64 = w.to_dtype(DType::F64).unwrap();
    let xp = Tensor::zeros((1, 3, 5, 5), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(conv2d(&xp, &w64, None, &d), Err(Error::InvalidInput(_))));
    let (x16, w16) = (xp.to_dtype(DType::F16).unwrap(), w.to_dtype(DType::F16).unwrap());
    assert!(matches!(conv2d(&x16, &w16, None, &d), Err(Error::InvalidInput(_))));
    // bias
    let b3 = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(conv2d(&xp, &w, Some(&b3), &d), Err(Error::ShapeMismatch { .. })));
    let b64 = Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(conv2d(&xp, &w, Some(&b64), &d), Err(Error::InvalidInput(_))));

    // VJPs: grad_out shape, input_dims rank, weight_dims channels.
    let y = conv2d(&xp, &w, None, &d).unwrap();
    assert_eq!(y.dims(), [1, 2, 3, 3]);
    let bad_g = Tensor::zeros((1, 2, 3, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        conv2d_input_vjp(&bad_g, &w, &[1, 3, 5, 5], &d),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(conv2d_input_vjp(&y, &w, &[3, 5, 5], &d), Err(Error::InvalidInput(_))));
    assert!(matches!(conv2d_input_vjp(&y, &w64, &[1, 3, 5, 5], &d), Err(Error::InvalidInput(_))));
    assert!(matches!(
        conv2d_weight_vjp(&xp, &y, &[2, 4, 3, 3], &d),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        conv2d_weight_vjp(&xp, &bad_g, &[2, 3, 3, 3], &d),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(conv2d_weight_vjp(&xp, &y, &[2, 3, 3], &d), Err(Error::InvalidInput(_))));
}

#[test]
fn empty_batch_gives_empty_outputs() {
    let x = Tensor::zeros((0, 3, 5, 5), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((2, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
    let d = Conv2dSpec::default();
    let y = conv2d(&x, &w, None, &d).unwrap();
    assert_eq!(y.dims(), [0, 2, 3, 3]);
    assert_eq!(conv2d_input_vjp(&y, &w, &[0, 3, 5, 5], &d).unwrap().dims(), [0, 3, 5, 5]);
    let dw = conv2d_weight_vjp(&x, &y, &[2, 3, 3, 3], &d).unwrap();
    assert!(values(&dw).iter().all(|&v| v == 0.0));
}

// ---------------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------------

fn pool_spec(k: [usize; 2], s: [usize; 2], pad: [usize; 4], include: bool) -> Pool2dSpec {
    let [top, bottom, left, right] = pad;
    Pool2dSpec {
        kernel: k,
        stride: s,
        padding: Padding2d { top, bottom, left, right },
        count_include_pad: include,
    }
}

fn pool_specs() -> Vec<Pool2dSpec> {
    vec![
        Pool2dSpec::square(2),
        pool_spec([3, 3], [2, 2], [0; 4], true),
        pool_spec([3, 3], [2, 2], [1; 4], true),
        pool_spec([3, 3], [2, 2], [1; 4], false),
        pool_spec([2, 3], [1, 2], [1, 0, 0, 2], false),
        pool_spec([2, 3], [1, 2], [1, 0, 0, 2], true),
        pool_spec([3, 2], [3, 1], [2, 1, 1, 0], false),
    ]
}

#[derive(Clone, Copy, PartialEq)]
enum Naive {
    Max,
    Avg,
}

/// Naive pooling of `[N, C, H, W]` values; also returns, for max pooling, the argmax index
/// (flat in the tensor) of every output.
fn naive_pool(
    x: &[f64],
    dims: [usize; 4],
    spec: &Pool2dSpec,
    kind: Naive,
) -> (Vec<f64>, Vec<usize>) {
    let [n, c, h, w] = dims;
    let [oh, ow] = spec.output_hw([h, w]).unwrap();
    let (mut y, mut arg) = (Vec::new(), Vec::new());
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let (mut best, mut best_at, mut sum, mut count) = (f64::NEG_INFINITY, 0, 0.0, 0);
                let mut found = false;
                for p in 0..spec.kernel[0] {
                    for q in 0..spec.kernel[1] {
                        let r = (i * spec.stride[0] + p) as isize - spec.padding.top as isize;
                        let s = (j * spec.stride[1] + q) as isize - spec.padding.left as isize;
                        if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                            continue;
                        }
                        let at = (plane * h + r as usize) * w + s as usize;
                        if !found || x[at] > best {
                            best = x[at];
                            best_at = at;
                            found = true;
                        }
                        sum += x[at];
                        count += 1;
                    }
                }
                assert!(found);
                let div =
                    if spec.count_include_pad { spec.kernel[0] * spec.kernel[1] } else { count };
                y.push(if kind == Naive::Max { best } else { sum / div as f64 });
                arg.push(best_at);
            }
        }
    }
    (y, arg)
}

#[test]
fn pooling_forward_matches_naive_reference() {
    let dims = [2, 3, 7, 8];
    let x = Rng(21).vec(dims.iter().product());
    let xt = tensor(x.clone(), &dims);
    for spec in pool_specs() {
        let [oh, ow] = spec.output_hw([7, 8]).unwrap();
        let (ymax, _) = naive_pool(&x, dims, &spec, Naive::Max);
        let got = max_pool2d(&xt, &spec).unwrap();
        assert_eq!(got.dims(), [2, 3, oh, ow]);
        assert_eq!(values(&got), ymax, "max {spec:?}");
        let (yavg, _) = naive_pool(&x, dims, &spec, Naive::Avg);
        assert_close(&values(&avg_pool2d(&xt, &spec).unwrap()), &yavg, 1e-14, "avg");
        let got32 = max_pool2d(&xt.to_dtype(DType::F32).unwrap(), &spec).unwrap();
        assert_eq!(got32.dtype(), DType::F32);
        assert_close(&values(&got32), &ymax, 1e-6, "max f32");
    }
}

#[test]
fn pooling_matches_candle_without_padding() {
    let x = tensor(Rng(22).vec(2 * 3 * 9 * 8), &[2, 3, 9, 8]);
    for (k, s) in [(2, 2), (3, 2), (3, 1), (2, 3)] {
        let spec = pool_spec([k, k], [s, s], [0; 4], true);
        let m = x.max_pool2d_with_stride(k, s).unwrap();
        assert_eq!(values(&max_pool2d(&x, &spec).unwrap()), values(&m));
        let a = x.avg_pool2d_with_stride(k, s).unwrap();
        assert_close(&values(&avg_pool2d(&x, &spec).unwrap()), &values(&a), 1e-14, "avg");
    }
}

#[test]
fn max_pool_vjp_routes_ties_to_the_first_maximum_only() {
    // All zeros, non-overlapping 2x2: each gradient lands on its window's top-left element.
    let x = Tensor::zeros((1, 1, 4, 4), DType::F64, &Device::Cpu).unwrap();
    let g = tensor(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let dx = values(&max_pool2d_vjp(&x, &g, &Pool2dSpec::square(2)).unwrap());
    #[rustfmt::skip]
    let expected = vec![
        1.0, 0.0, 2.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        3.0, 0.0, 4.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(dx, expected);

    // Overlapping 2x2 stride 1 windows of equal values: again each window's first element.
    let x = Tensor::zeros((1, 1, 3, 3), DType::F32, &Device::Cpu).unwrap();
    let g = tensor(vec![1.0, 10.0, 100.0, 1000.0], &[1, 1, 2, 2]).to_dtype(DType::F32).unwrap();
    let spec = pool_spec([2, 2], [1, 1], [0; 4], true);
    let dx = values(&max_pool2d_vjp(&x, &g, &spec).unwrap());
    assert_eq!(dx, vec![1.0, 10.0, 0.0, 100.0, 1000.0, 0.0, 0.0, 0.0, 0.0]);

    // A tie that is not at the window start: the first of the two 3s in row-major order.
    let x = tensor(vec![1.0, 3.0, 3.0, 0.0], &[1, 1, 2, 2]);
    let g = tensor(vec![5.0], &[1, 1, 1, 1]);
    let dx = values(&max_pool2d_vjp(&x, &g, &Pool2dSpec::square(2)).unwrap());
    assert_eq!(dx, vec![0.0, 5.0, 0.0, 0.0]);

    // A NaN is the maximum of its window (the forward pass propagates it): the gradient goes
    // to the first NaN, in every window of the plane, whatever the dtype.
    for dtype in [DType::F64, DType::F32] {
        #[rustfmt::skip]
        let x = tensor(vec![
            1.0, f64::NAN, 7.0, 2.0,
            f64::NAN, 0.0, 2.0, 7.0,
        ], &[1, 1, 2, 4]).to_dtype(dtype).unwrap();
        let g = tensor(vec![5.0, 6.0], &[1, 1, 1, 2]).to_dtype(dtype).unwrap();
        let dx = values(&max_pool2d_vjp(&x, &g, &Pool2dSpec::square(2)).unwrap());
        assert_eq!(dx, vec![0.0, 5.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0], "{dtype:?}");
    }

    // Overlapping windows accumulate on a shared maximum.
    let x = tensor(vec![0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0], &[1, 1, 3, 3]);
    let g = tensor(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let dx = values(&max_pool2d_vjp(&x, &g, &spec).unwrap());
    assert_eq!(dx, vec![0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn max_pool_padding_never_wins() {
    // All inputs negative: zero padding would win, -inf padding must not.
    let x = (Tensor::ones((1, 1, 3, 3), DType::F64, &Device::Cpu).unwrap() * -1.0).unwrap();
    let spec = pool_spec([3, 3], [2, 2], [1; 4], true);
    let y = max_pool2d(&x, &spec).unwrap();
    assert_eq!(y.dims(), [1, 1, 2, 2]);
    assert_eq!(values(&y), vec![-1.0; 4]);
    // Ties everywhere: each output routes to its window's first in-bounds element.
    let g = tensor(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let dx = values(&max_pool2d_vjp(&x, &g, &spec).unwrap());
    // Windows (in input coordinates) start at rows -1, 1 and columns -1, 1, clipped to 0, 1.
    assert_eq!(dx, vec![1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn max_pool_vjp_matches_naive_argmax_and_finite_differences() {
    const H: f64 = 1e-4;
    let dims = [2, 2, 7, 6];
    let len: usize = dims.iter().product();
    // Distinct values 0.1 apart (a shuffled ramp): no ties, and a step of 1e-4 never swaps the
    // order, so max pooling is linear around x and central differences are exact.
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = Rng(31);
    for i in (1..len).rev() {
        let j = ((rng.next_f64() + 1.0) / 2.0 * (i + 1) as f64) as usize % (i + 1);
        order.swap(i, j);
    }
    let x: Vec<f64> = order.iter().map(|&v| v as f64 * 0.1 - 5.0).collect();
    for spec in pool_specs() {
        let [oh, ow] = spec.output_hw([7, 6]).unwrap();
        let g = Rng(32).vec(dims[0] * dims[1] * oh * ow);
        let gt = tensor(g.clone(), &[dims[0], dims[1], oh, ow]);
        let dx = values(&max_pool2d_vjp(&tensor(x.clone(), &dims), &gt, &spec).unwrap());
        let (_, arg) = naive_pool(&x, dims, &spec, Naive::Max);
        let mut expected = vec![0.0; len];
        for (a, gv) in arg.iter().zip(&g) {
            expected[*a] += gv;
        }
        assert_close(&dx, &expected, 1e-14, "max vjp vs naive argmax");
        let f =
            |x: &[f64]| dot(&values(&max_pool2d(&tensor(x.to_vec(), &dims), &spec).unwrap()), &g);
        let fd: Vec<f64> = (0..len)
            .map(|e| {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[e] += H;
                xm[e] -= H;
                (f(&xp) - f(&xm)) / (2.0 * H)
            })
            .collect();
        assert_close(&dx, &fd, 1e-8, &format!("max vjp FD {spec:?}"));
    }
}

/// The fused pooling kernels' cases: pre-activations `z` with NaNs, and their geometries (the
/// vector 2x2 path with its scalar remainder: width 22, 11 windows, 8 by the vector kernel;
/// every pooling geometry on a small odd plane).
fn fused_pool_cases(seed: u64) -> Vec<([usize; 4], Vec<f64>, Vec<Pool2dSpec>)> {
    [([3, 4, 12, 22], vec![Pool2dSpec::square(2)]), ([2, 3, 7, 6], pool_specs())]
        .into_iter()
        .map(|(dims, specs)| {
            let mut z = Rng(seed).vec(dims.iter().product());
            z[5] = f64::NAN;
            z[17] = f64::NAN;
            (dims, z, specs)
        })
        .collect()
}

/// Pooling the rectified input in one pass equals `max_pool2d(relu(z))` value for value
/// (f32 and f64, every geometry, the 2x2 path, planes with NaN, which the ReLU maps to 0).
#[test]
fn max_pool_of_relu_equals_pooling_the_relu() {
    use skepsis_nn::ops::pointwise::relu;
    for (dims, z, specs) in fused_pool_cases(51) {
        for spec in specs {
            for dtype in [DType::F32, DType::F64] {
                let zt = tensor(z.clone(), &dims).to_dtype(dtype).unwrap();
                let fused = values(&max_pool2d_of_relu(&zt, &spec).unwrap());
                let two = values(&max_pool2d(&relu(&zt).unwrap(), &spec).unwrap());
                assert_eq!(fused, two, "{spec:?} {dtype:?}");
                // The NaNs, which plain max pooling would keep, are rectified away.
                assert!(fused.iter().all(|v| !v.is_nan()));
            }
        }
    }
}

/// The bits of a tensor's values (NaNs compare equal to the same NaN).
fn bits(t: &Tensor) -> Vec<u64> {
    values(t).iter().map(|v| v.to_bits()).collect()
}

/// The fused convolution + ReLU + max pool equals the three operators in turn, value for
/// value, and so do the three outputs of its traced form: every convolution case (batches of
/// one run their images in sequence, larger ones in parallel) with a NaN input pixel, under
/// every pooling geometry that fits its output, in f32 and f64.
#[test]
fn conv_relu_max_pool_equals_the_three_operators() {
    use skepsis_nn::ops::pointwise::relu;
    let mut compared = 0;
    for (idx, cs) in cases().iter().enumerate() {
        let mut ops = operands(cs, 300 + idx as u64);
        ops.x[0] = f64::NAN;
        let [oh, ow] = cs.out_hw();
        for spec in pool_specs().iter().filter(|s| s.output_hw([oh, ow]).is_some()) {
            for dtype in [DType::F32, DType::F64] {
                let xt = tensor(ops.x.clone(), &cs.x_dims()).to_dtype(dtype).unwrap();
                let wt = tensor(ops.w.clone(), &cs.w_dims()).to_dtype(dtype).unwrap();
                let bt = ops.b.clone().map(|b| tensor(b, &[cs.o]).to_dtype(dtype).unwrap());
                let fused = conv2d_relu_max_pool2d(&xt, &wt, bt.as_ref(), &cs.spec(), spec);
                let fused = fused.unwrap();
                let y = conv2d(&xt, &wt, bt.as_ref(), &cs.spec()).unwrap();
                let three = max_pool2d(&relu(&y).unwrap(), spec).unwrap();
                assert_eq!(fused.dims(), three.dims());
                assert_eq!(fused.dtype(), dtype);
                assert_eq!(values(&fused), values(&three), "case {idx} {spec:?} {dtype:?}");
                let traced = conv2d_relu_max_pool2d_traced(&xt, &wt, bt.as_ref(), &cs.spec(), spec);
                let [z, r, p] = traced.unwrap();
                let (relu_y, pooled) = (relu(&y).unwrap(), three);
                for (got, expected) in [(&z, &y), (&r, &relu_y), (&p, &pooled)] {
                    assert_eq!((got.dims(), got.dtype()), (expected.dims(), dtype));
                    assert_eq!(bits(got), bits(expected), "case {idx} {spec:?} {dtype:?}");
                }
                compared += 1;
            }
        }
    }
    assert!(compared >= 100, "too few fused cases: {compared}");
}

/// The fused convolution + ReLU + max pool rejects what the convolution or the pool would.
#[test]
fn conv_relu_max_pool_rejects_bad_input_with_typed_errors() {
    let zeros = |dims: &[usize], dtype| Tensor::zeros(dims, dtype, &Device::Cpu).unwrap();
    let (x, w) = (zeros(&[1, 3, 5, 5], DType::F32), zeros(&[2, 3, 3, 3], DType::F32));
    let d = Conv2dSpec::default();
    let fused = |x: &Tensor, w: &Tensor, b: Option<&Tensor>, pool: Pool2dSpec| {
        let traced = conv2d_relu_max_pool2d_traced(x, w, b, &d, &pool).unwrap_err();
        let error = conv2d_relu_max_pool2d(x, w, b, &d, &pool).unwrap_err();
        assert_eq!(
            std::mem::discriminant(&traced),
            std::mem::discriminant(&error),
            "{traced} / {error}"
        );
        error
    };
    let p2 = Pool2dSpec::square(2);
    assert_eq!(conv2d_relu_max_pool2d(&x, &w, None, &d, &p2).unwrap().dims(), [1, 2, 1, 1]);
    let bad_channels = zeros(&[2, 2, 3, 3], DType::F32);
    assert!(matches!(fused(&x, &bad_channels, None, p2), Error::ShapeMismatch { .. }));
    // The convolution's 3x3 output is smaller than the window.
    assert!(matches!(fused(&x, &w, None, Pool2dSpec::square(4)), Error::InvalidInput(_)));
    let empty = pool_spec([0, 2], [1, 1], [0; 4], false);
    assert!(matches!(fused(&x, &w, None, empty), Error::InvalidParameter { .. }));
    let b3 = zeros(&[3], DType::F32);
    assert!(matches!(fused(&x, &w, Some(&b3), p2), Error::ShapeMismatch { .. }));
    let b64 = zeros(&[2], DType::F64);
    assert!(matches!(fused(&x, &w, Some(&b64), p2), Error::InvalidInput(_)));
    assert!(matches!(
        fused(&x, &w.to_dtype(DType::F64).unwrap(), None, p2),
        Error::InvalidInput(_)
    ));
}

/// The fused max-pool + ReLU VJP equals the two VJPs in turn, value for value (f32 and f64,
/// the cases of [`fused_pool_cases`]), and the ReLU's central differences.
#[test]
fn max_pool_relu_vjp_equals_the_two_vjps() {
    use skepsis_nn::ops::pointwise::{relu, relu_vjp};
    for (dims, z, specs) in fused_pool_cases(41) {
        for spec in specs {
            let [oh, ow] = spec.output_hw([dims[2], dims[3]]).unwrap();
            let g = Rng(42).vec(dims[0] * dims[1] * oh * ow);
            for dtype in [DType::F32, DType::F64] {
                let zt = tensor(z.clone(), &dims).to_dtype(dtype).unwrap();
                let gt = tensor(g.clone(), &[dims[0], dims[1], oh, ow]).to_dtype(dtype).unwrap();
                let x = relu(&zt).unwrap();
                let fused = values(&max_pool2d_relu_vjp(&x, &gt, &spec).unwrap());
                let pooled = max_pool2d_vjp(&x, &gt, &spec).unwrap();
                let two = values(&relu_vjp(&zt, &pooled).unwrap());
                let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
                assert!(fused.iter().zip(&two).all(|(&a, &b)| same(a, b)), "{spec:?} {dtype:?}");
                assert!(fused.iter().any(|&v| v != 0.0) && two.contains(&0.0));
            }
        }
    }
    // Away from ties and zeros, the fused VJP is the derivative of <g, maxpool(relu(z))>.
    let dims = [1, 2, 6, 8];
    let len: usize = dims.iter().product();
    let z: Vec<f64> = (0..len).map(|i| ((i * 37) % len) as f64 * 0.1 - 4.05).collect();
    let spec = Pool2dSpec::square(2);
    let g = Rng(43).vec(2 * 3 * 4);
    let gt = tensor(g.clone(), &[1, 2, 3, 4]);
    let x = skepsis_nn::ops::pointwise::relu(&tensor(z.clone(), &dims)).unwrap();
    let fused = values(&max_pool2d_relu_vjp(&x, &gt, &spec).unwrap());
    let f = |z: &[f64]| {
        let x = skepsis_nn::ops::pointwise::relu(&tensor(z.to_vec(), &dims)).unwrap();
        dot(&values(&max_pool2d(&x, &spec).unwrap()), &g)
    };
    let fd: Vec<f64> = (0..len)
        .map(|e| {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[e] += 1e-4;
            zm[e] -= 1e-4;
            (f(&zp) - f(&zm)) / 2e-4
        })
        .collect();
    assert_close(&fused, &fd, 1e-8, "fused max-pool + ReLU VJP vs central differences");
}

/// Convolution geometries with a pool after them for the routed input VJP: the ones it takes
/// in f32 on AVX-512 (at least 16 input channels, one group, unit dilation) and ones it hands
/// to the two dense VJPs.
fn routed_cases() -> Vec<(Case, Pool2dSpec)> {
    let p2 = Pool2dSpec::square(2);
    vec![
        // The SC CNN's conv2 and its 2x2 pool.
        (case(3, 32, 14, 14, 64, [5, 5], [1, 1], [2; 4], [1, 1], 1, true), p2),
        // Stride 2 and overlapping 3x3 windows with padding: positions routed twice.
        (
            case(2, 16, 11, 9, 24, [3, 3], [2, 2], [1, 0, 0, 1], [1, 1], 1, false),
            pool_spec([3, 3], [2, 2], [1, 1, 1, 1], false),
        ),
        // 20 channels (padded to 32 in the plane), a 7x7 output whose last row and column no
        // window covers, an asymmetric kernel and padding.
        (case(2, 20, 8, 8, 7, [3, 2], [1, 1], [0, 1, 1, 0], [1, 1], 1, true), p2),
        // Left to the dense VJPs (one image per task, the pool's VJP in cache where the batch
        // is spread over the threads): the SC CNN's conv1 (one input channel, 14 windows per
        // row: a vector step that overlaps the one before it), three input channels, 8 input
        // channels, dilation 2, two groups.
        (case(3, 1, 28, 28, 32, [5, 5], [1, 1], [2; 4], [1, 1], 1, true), p2),
        (case(2, 3, 10, 13, 16, [3, 3], [1, 1], [1; 4], [1, 1], 1, false), p2),
        (case(2, 8, 9, 9, 16, [3, 3], [1, 1], [1; 4], [1, 1], 1, false), p2),
        (case(2, 16, 9, 9, 16, [3, 3], [1, 1], [2; 4], [2, 2], 1, false), p2),
        (case(2, 32, 6, 6, 16, [3, 3], [1, 1], [1; 4], [1, 1], 2, false), p2),
    ]
}

/// The routed input VJP of conv -> ReLU -> max pool against the two dense VJPs in float64 on
/// the same (f32-representable) operands, in one- and two-thread pools. The ReLU output is
/// quantized to multiples of 1/4 so that windows hold tied maxima (the first one must win)
/// and all-zero windows (the gradient must stop), and holds two NaNs.
#[test]
fn routed_conv_relu_max_pool_vjp_equals_the_dense_vjps() {
    for (idx, (cs, pool)) in routed_cases().into_iter().enumerate() {
        let [oh, ow] = cs.out_hw();
        let [ph, pw] = pool.output_hw([oh, ow]).unwrap();
        let mut rng = Rng(900 + idx as u64);
        let mut relu_out: Vec<f64> = rng
            .vec(cs.n * cs.o * oh * ow)
            .iter()
            .map(|v| (v * 8.0).round().max(0.0) / 4.0)
            .collect();
        // A NaN wins its window, whose gradient then stops (its maximum is not positive).
        let len = relu_out.len();
        relu_out[1] = f64::NAN;
        relu_out[len / 2 + 1] = f64::NAN;
        let g = rng.vec(cs.n * cs.o * ph * pw);
        let w = operands(&cs, 950 + idx as u64).w;
        let f32_exact = |v: Vec<f64>| v.into_iter().map(|x| x as f32 as f64).collect::<Vec<_>>();
        let (g, w) = (f32_exact(g), f32_exact(w));
        let x = tensor(relu_out, &[cs.n, cs.o, oh, ow]);
        let (gt, wt) = (tensor(g, &[cs.n, cs.o, ph, pw]), tensor(w, &cs.w_dims()));
        let dense = max_pool2d_relu_vjp(&x, &gt, &pool).unwrap();
        let expected = values(&conv2d_input_vjp(&dense, &wt, &cs.x_dims(), &cs.spec()).unwrap());
        let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        for threads in [1, 2] {
            let run = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let dx = run.install(|| {
                conv2d_relu_max_pool2d_input_vjp(
                    &f32(&x),
                    &f32(&gt),
                    &f32(&wt),
                    &cs.x_dims(),
                    &cs.spec(),
                    &pool,
                )
                .unwrap()
            });
            assert_eq!((dx.dims(), dx.dtype()), (&cs.x_dims()[..], DType::F32));
            let what = format!("case {idx} {cs:?} {pool:?}, {threads} thread(s)");
            assert_close(&values(&dx), &expected, 1e-5, &what);
        }
        // f64 (always the dense VJPs) is the reference itself.
        let dx64 = conv2d_relu_max_pool2d_input_vjp(&x, &gt, &wt, &cs.x_dims(), &cs.spec(), &pool);
        assert_eq!(values(&dx64.unwrap()), expected, "case {idx} in f64");
    }
}

/// A NaN in the pooled gradient reaches the input where the dense VJPs put it, also through
/// a window whose maximum is not positive (`0 · NaN`); a NaN weight, which the dense product
/// spreads through every zero gradient, gives the dense result.
#[test]
fn routed_conv_relu_max_pool_vjp_propagates_nan_like_the_dense_vjps() {
    let (cs, pool) = routed_cases()[0];
    let [oh, ow] = cs.out_hw();
    let [ph, pw] = pool.output_hw([oh, ow]).unwrap();
    let mut rng = Rng(990);
    let mut relu_out: Vec<f64> =
        rng.vec(cs.n * cs.o * oh * ow).iter().map(|v| v.max(0.0)).collect();
    // Window (0, 0) of image 1, channel 3 is all zeros.
    let plane = oh * ow;
    let base = (cs.o + 3) * plane;
    for at in [0, 1, ow, ow + 1] {
        relu_out[base + at] = 0.0;
    }
    let mut g = rng.vec(cs.n * cs.o * ph * pw);
    g[(cs.o + 3) * ph * pw] = f64::NAN;
    let mut w = operands(&cs, 991).w;
    let nan_mask = |v: &[f64]| v.iter().map(|x| x.is_nan()).collect::<Vec<_>>();
    for nan_weight in [false, true] {
        if nan_weight {
            g[(cs.o + 3) * ph * pw] = 0.5;
            w[7] = f64::NAN;
        }
        let x = tensor(relu_out.clone(), &[cs.n, cs.o, oh, ow]).to_dtype(DType::F32).unwrap();
        let gt = tensor(g.clone(), &[cs.n, cs.o, ph, pw]).to_dtype(DType::F32).unwrap();
        let wt = tensor(w.clone(), &cs.w_dims()).to_dtype(DType::F32).unwrap();
        let dense = max_pool2d_relu_vjp(&x, &gt, &pool).unwrap();
        let expected = values(&conv2d_input_vjp(&dense, &wt, &cs.x_dims(), &cs.spec()).unwrap());
        let got = conv2d_relu_max_pool2d_input_vjp(&x, &gt, &wt, &cs.x_dims(), &cs.spec(), &pool);
        let got = values(&got.unwrap());
        assert_eq!(nan_mask(&got), nan_mask(&expected), "NaN weight: {nan_weight}");
        assert!(got.iter().any(|v| v.is_nan()), "NaN weight: {nan_weight}");
        let image0 = &got[..cs.c * cs.h * cs.w];
        if nan_weight {
            // Input channel 0 of every image, through the zero gradients too.
            assert!(image0.iter().filter(|v| v.is_nan()).count() >= cs.h * cs.w / 2);
        } else {
            // Image 0 has no NaN gradient.
            assert!(image0.iter().all(|v| v.is_finite()));
        }
    }
}

/// The routed VJP rejects what the convolution or the pool would, and operands of the wrong
/// shape, dtype or device.
#[test]
fn routed_conv_relu_max_pool_vjp_rejects_bad_input_with_typed_errors() {
    let zeros = |dims: &[usize], dtype| Tensor::zeros(dims, dtype, &Device::Cpu).unwrap();
    let (d, p2) = (Conv2dSpec::default(), Pool2dSpec::square(2));
    let x_dims = [2, 16, 6, 6];
    let (relu_out, g) = (zeros(&[2, 4, 4, 4], DType::F32), zeros(&[2, 4, 2, 2], DType::F32));
    let w = zeros(&[4, 16, 3, 3], DType::F32);
    let vjp = |r: &Tensor, g: &Tensor, w: &Tensor, x_dims: &[usize], pool: &Pool2dSpec| {
        conv2d_relu_max_pool2d_input_vjp(r, g, w, x_dims, &d, pool)
    };
    assert_eq!(vjp(&relu_out, &g, &w, &x_dims, &p2).unwrap().dims(), x_dims);
    let shape_error = |e: Error| matches!(e, Error::ShapeMismatch { .. });
    assert!(shape_error(vjp(&zeros(&[2, 4, 4, 5], DType::F32), &g, &w, &x_dims, &p2).unwrap_err()));
    assert!(shape_error(
        vjp(&relu_out, &zeros(&[2, 4, 2, 1], DType::F32), &w, &x_dims, &p2).unwrap_err()
    ));
    assert!(shape_error(
        vjp(&relu_out, &g, &zeros(&[4, 8, 3, 3], DType::F32), &x_dims, &p2).unwrap_err()
    ));
    assert!(matches!(
        vjp(&relu_out, &g, &w, &[2, 16, 6], &p2).unwrap_err(),
        Error::InvalidInput(_)
    ));
    let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
    assert!(matches!(
        vjp(&relu_out, &f64s(&g), &w, &x_dims, &p2).unwrap_err(),
        Error::InvalidInput(_)
    ));
    assert!(matches!(
        vjp(&relu_out, &g, &f64s(&w), &x_dims, &p2).unwrap_err(),
        Error::InvalidInput(_)
    ));
    let ints = relu_out.to_dtype(DType::U32).unwrap();
    assert!(matches!(vjp(&ints, &g, &w, &x_dims, &p2).unwrap_err(), Error::InvalidInput(_)));
    let empty = pool_spec([0, 2], [1, 1], [0; 4], false);
    assert!(matches!(
        vjp(&relu_out, &g, &w, &x_dims, &empty).unwrap_err(),
        Error::InvalidParameter { .. }
    ));
    assert!(matches!(
        vjp(&relu_out, &g, &w, &x_dims, &Pool2dSpec::square(5)).unwrap_err(),
        Error::InvalidInput(_)
    ));
}

/// Central differences of `x -> <g, forward(x)>` against `vjp`.
fn check_linear_vjp(
    dims: [usize; 4],
    forward: &dyn Fn(&Tensor) -> Tensor,
    vjp: &dyn Fn(&Tensor) -> Tensor,
    seed: u64,
    what: &str,
) {
    const H: f64 = 1e-3;
    let len: usize = dims.iter().product();
    let x = Rng(seed).vec(len);
    let y = forward(&tensor(x.clone(), &dims));
    let g = Rng(seed + 1).vec(y.elem_count());
    let gt = tensor(g.clone(), y.dims());
    let dx = vjp(&gt);
    assert_eq!(dx.dims(), dims, "{what}");
    let f = |x: &[f64]| dot(&values(&forward(&tensor(x.to_vec(), &dims))), &g);
    let fd: Vec<f64> = (0..len)
        .map(|e| {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[e] += H;
            xm[e] -= H;
            (f(&xp) - f(&xm)) / (2.0 * H)
        })
        .collect();
    assert_close(&values(&dx), &fd, 1e-9, what);
    // f32 agrees with f64.
    let dx32 = vjp(&gt.to_dtype(DType::F32).unwrap());
    assert_eq!(dx32.dtype(), DType::F32);
    assert_close(&values(&dx32), &values(&dx), 1e-6, what);
}

#[test]
fn avg_pool_vjp_matches_finite_differences() {
    let dims = [2, 2, 7, 6];
    for (i, spec) in pool_specs().into_iter().enumerate() {
        check_linear_vjp(
            dims,
            &|x| avg_pool2d(x, &spec).unwrap(),
            &|g| avg_pool2d_vjp(g, &dims, &spec).unwrap(),
            40 + i as u64,
            &format!("avg vjp {spec:?}"),
        );
    }
}

#[test]
fn count_include_pad_both_ways() {
    let x = Tensor::ones((1, 1, 2, 2), DType::F64, &Device::Cpu).unwrap();
    let with = pool_spec([2, 2], [1, 1], [1; 4], true);
    let without = Pool2dSpec { count_include_pad: false, ..with };
    let y = values(&avg_pool2d(&x, &with).unwrap());
    assert_eq!(y, vec![0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]);
    let y = values(&avg_pool2d(&x, &without).unwrap());
    assert_eq!(y, vec![1.0; 9]);
    let g = Tensor::ones((1, 1, 3, 3), DType::F64, &Device::Cpu).unwrap();
    // Every input element is in 4 windows; with padding counted each passes on 1/4.
    assert_eq!(values(&avg_pool2d_vjp(&g, &[1, 1, 2, 2], &with).unwrap()), vec![1.0; 4]);
    // Without: of an element's 4 windows one holds 1 element, two hold 2, one holds 4.
    assert_eq!(values(&avg_pool2d_vjp(&g, &[1, 1, 2, 2], &without).unwrap()), vec![2.25; 4]);
    let g = tensor(vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0], &[1, 1, 3, 3]);
    assert_eq!(
        values(&avg_pool2d_vjp(&g, &[1, 1, 2, 2], &without).unwrap()),
        vec![1.0, 0.0, 0.0, 4.0]
    );
    assert_eq!(
        values(&avg_pool2d_vjp(&g, &[1, 1, 2, 2], &with).unwrap()),
        vec![0.25, 0.0, 0.0, 1.0]
    );
}

/// PyTorch's adaptive bins, written out directly.
fn naive_adaptive(x: &[f64], dims: [usize; 4], out: [usize; 2]) -> Vec<f64> {
    let [n, c, h, w] = dims;
    let mut y = Vec::new();
    for plane in 0..n * c {
        for i in 0..out[0] {
            let (r0, r1) = ((i * h) / out[0], ((i + 1) * h).div_ceil(out[0]));
            for j in 0..out[1] {
                let (c0, c1) = ((j * w) / out[1], ((j + 1) * w).div_ceil(out[1]));
                let mut s = 0.0;
                for r in r0..r1 {
                    for q in c0..c1 {
                        s += x[(plane * h + r) * w + q];
                    }
                }
                y.push(s / ((r1 - r0) * (c1 - c0)) as f64);
            }
        }
    }
    y
}

#[test]
fn adaptive_avg_pool_forward_and_vjp() {
    for (dims, out) in [
        ([2, 3, 7, 5], [3, 2]),
        ([1, 2, 5, 4], [7, 6]),
        ([2, 2, 6, 6], [1, 1]),
        ([1, 1, 6, 6], [6, 6]),
        ([1, 2, 10, 9], [4, 4]),
    ] {
        let x = Rng(50).vec(dims.iter().product());
        let y = adaptive_avg_pool2d(&tensor(x.clone(), &dims), out).unwrap();
        assert_eq!(y.dims(), [dims[0], dims[1], out[0], out[1]]);
        assert_close(&values(&y), &naive_adaptive(&x, dims, out), 1e-14, "adaptive forward");
        check_linear_vjp(
            dims,
            &|x| adaptive_avg_pool2d(x, out).unwrap(),
            &|g| adaptive_avg_pool2d_vjp(g, &dims, out).unwrap(),
            60,
            &format!("adaptive vjp {dims:?} -> {out:?}"),
        );
    }
    // Global average pooling is the plain mean.
    let x = tensor((0..12).map(f64::from).collect(), &[1, 1, 3, 4]);
    assert_eq!(values(&adaptive_avg_pool2d(&x, [1, 1]).unwrap()), vec![5.5]);
}

#[test]
fn pooling_batched_equals_unbatched() {
    let dims = [5, 3, 9, 9];
    let x = tensor(Rng(70).vec(dims.iter().product()), &dims).to_dtype(DType::F32).unwrap();
    let spec = pool_spec([3, 3], [2, 2], [1; 4], false);
    let y = max_pool2d(&x, &spec).unwrap();
    let dx = max_pool2d_vjp(&x, &y, &spec).unwrap();
    let a = avg_pool2d(&x, &spec).unwrap();
    for i in 0..5 {
        let xi = x.narrow(0, i, 1).unwrap();
        assert_eq!(f32s(&max_pool2d(&xi, &spec).unwrap()), f32s(&y.narrow(0, i, 1).unwrap()));
        let yi = y.narrow(0, i, 1).unwrap();
        assert_eq!(
            f32s(&max_pool2d_vjp(&xi, &yi, &spec).unwrap()),
            f32s(&dx.narrow(0, i, 1).unwrap())
        );
        assert_eq!(f32s(&avg_pool2d(&xi, &spec).unwrap()), f32s(&a.narrow(0, i, 1).unwrap()));
    }
}

#[test]
fn pooling_rejects_bad_input_with_typed_errors() {
    let x = Tensor::zeros((1, 2, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let x3 = Tensor::zeros((2, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let sq = Pool2dSpec::square(2);
    assert!(matches!(max_pool2d(&x3, &sq), Err(Error::InvalidInput(_))));
    assert!(matches!(avg_pool2d(&x3, &sq), Err(Error::InvalidInput(_))));
    assert!(matches!(adaptive_avg_pool2d(&x3, [2, 2]), Err(Error::InvalidInput(_))));
    let k0 = pool_spec([0, 2], [1, 1], [0; 4], true);
    assert!(matches!(max_pool2d(&x, &k0), Err(Error::InvalidParameter { .. })));
    let s0 = pool_spec([2, 2], [0, 1], [0; 4], true);
    assert!(matches!(avg_pool2d(&x, &s0), Err(Error::InvalidParameter { .. })));
    let big_pad = pool_spec([2, 2], [1, 1], [0, 2, 0, 0], true);
    assert!(matches!(max_pool2d(&x, &big_pad), Err(Error::InvalidParameter { .. })));
    let too_big = pool_spec([5, 2], [1, 1], [0; 4], true);
    assert!(matches!(max_pool2d(&x, &too_big), Err(Error::InvalidInput(_))));
    assert!(matches!(avg_pool2d(&x, &too_big), Err(Error::InvalidInput(_))));
    let empty = Tensor::zeros((1, 2, 0, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(adaptive_avg_pool2d(&empty, [1, 1]), Err(Error::InvalidInput(_))));
    assert!(matches!(adaptive_avg_pool2d(&x, [0, 1]), Err(Error::InvalidParameter { .. })));
    let x16 = x.to_dtype(DType::F16).unwrap();
    assert!(matches!(max_pool2d(&x16, &sq), Err(Error::InvalidInput(_))));
    // VJPs: grad_out shape and dtype.
    let g_bad = Tensor::zeros((1, 2, 2, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(max_pool2d_vjp(&x, &g_bad, &sq), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(avg_pool2d_vjp(&g_bad, &[1, 2, 4, 4], &sq), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        adaptive_avg_pool2d_vjp(&g_bad, &[1, 2, 4, 4], [2, 2]),
        Err(Error::ShapeMismatch { .. })
    ));
    let g64 = Tensor::zeros((1, 2, 2, 2), DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(max_pool2d_vjp(&x, &g64, &sq), Err(Error::InvalidInput(_))));
    assert!(matches!(avg_pool2d_vjp(&g64, &[1, 2, 4], &sq), Err(Error::InvalidInput(_))));
}

/// The 2x2 max-pool VJP on rows wide enough for the vector kernel (11 windows: eight in
/// vectors, three in the scalar loop), on values with many ties (four levels, signed zeros),
/// in f32 and f64: every gradient lands on its window's first maximum, as the naive argmax
/// decides.
#[test]
fn wide_2x2_max_pool_vjp_routes_like_the_naive_argmax() {
    let dims = [2, 3, 10, 22];
    let len: usize = dims.iter().product();
    let levels = [-0.0, 0.0, 1.5, -2.0];
    let mut rng = Rng(41);
    let x: Vec<f64> =
        (0..len).map(|_| levels[((rng.next_f64() + 1.0) * 2.0) as usize % 4]).collect();
    let spec = Pool2dSpec::square(2);
    let [oh, ow] = spec.output_hw([10, 22]).unwrap();
    let g: Vec<f64> = (0..dims[0] * dims[1] * oh * ow).map(|i| 1.0 + i as f64).collect();
    let (_, arg) = naive_pool(&x, dims, &spec, Naive::Max);
    let mut expected = vec![0.0; len];
    for (a, gv) in arg.iter().zip(&g) {
        expected[*a] += gv;
    }
    for dtype in [DType::F32, DType::F64] {
        let xt = tensor(x.clone(), &dims).to_dtype(dtype).unwrap();
        let gt = tensor(g.clone(), &[dims[0], dims[1], oh, ow]).to_dtype(dtype).unwrap();
        let dx = values(&max_pool2d_vjp(&xt, &gt, &spec).unwrap());
        assert_eq!(dx, expected, "{dtype:?}");
    }
}
