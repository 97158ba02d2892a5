//! One ONNX operator at a time: attribute-vs-input changes across opsets, padding rules,
//! folded Gemm scalars, and the clear rejections.

mod onnx_support;

use candle_core::{Device, Tensor};
use onnx_support::*;
use skepsis_nn::onnx::proto::ModelProto;
use skepsis_nn::ops::Padding2d;
use skepsis_nn::{Error, Layer, Model};

fn kinds(m: &Model) -> Vec<&'static str> {
    m.nodes().iter().map(|n| n.layer.kind()).collect()
}

fn err_text(m: &ModelProto) -> String {
    match import(m) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_err(m: &ModelProto, needle: &str) {
    let text = err_text(m);
    assert!(text.contains(needle), "{text:?} lacks {needle:?}");
}

#[test]
fn squeeze_and_unsqueeze_axes_move_from_attribute_to_input_in_opset_13() {
    for opset in [11, 12, 13, 17, 21] {
        let (nodes, inits) = if opset < 13 {
            (
                vec![
                    node("Unsqueeze", "u", &["input"], &["a"], vec![attr_ints("axes", &[2, -1])]),
                    node("Squeeze", "s", &["a"], &["b"], vec![attr_ints("axes", &[3])]),
                    node("Squeeze", "s2", &["b"], &["logits"], vec![]),
                ],
                vec![],
            )
        } else {
            (
                vec![
                    node("Unsqueeze", "u", &["input", "ua"], &["a"], vec![]),
                    node("Squeeze", "s", &["a", "sa"], &["b"], vec![]),
                    node("Squeeze", "s2", &["b"], &["logits"], vec![]),
                ],
                vec![int_tensor("ua", &[2, -1]), int_tensor("sa", &[3])],
            )
        };
        let m = import(&model(opset, nodes, inits, &[4], "logits")).unwrap();
        // Weight-free models run in f32 (the dtype of a model without tensors).
        let shapes: Vec<String> = m.nodes().iter().map(|n| format!("{:?}", n.layer)).collect();
        assert_eq!(
            shapes,
            ["Reshape { shape: [4, 1, 1] }", "Reshape { shape: [4, 1] }", "Flatten"]
        );
        let x = Tensor::from_vec(values(1, 8), (2, 4), &Device::Cpu)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        let y = m.forward(&x).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), x.to_vec2::<f32>().unwrap());
    }
    // The attribute form is rejected where the opset expects an input, and vice versa.
    let attr_in_13 = model(
        13,
        vec![node("Squeeze", "s", &["input"], &["logits"], vec![attr_ints("axes", &[2])])],
        vec![],
        &[4, 1],
        "logits",
    );
    assert_err(&attr_in_13, "attribute 'axes' is not supported");
    let input_in_11 = model(
        11,
        vec![node("Unsqueeze", "u", &["input", "ua"], &["logits"], vec![])],
        vec![int_tensor("ua", &[2])],
        &[4],
        "logits",
    );
    assert_err(&input_in_11, "takes 1 to 1 inputs");
    let batch_axis = model(
        13,
        vec![node("Squeeze", "s", &["input", "sa"], &["logits"], vec![])],
        vec![int_tensor("sa", &[0])],
        &[4],
        "logits",
    );
    assert_err(&batch_axis, "batch axis");
}

fn reshape_to(target: &[i64]) -> ModelProto {
    model(
        14,
        vec![node("Reshape", "r", &["input", "shape"], &["logits"], vec![])],
        vec![int_tensor("shape", target)],
        &[2, 3],
        "logits",
    )
}

#[test]
fn reshape_keeps_the_batch_axis() {
    let m = import(&reshape_to(&[-1, 6])).unwrap();
    assert_eq!(kinds(&m), ["flatten"]);
    let m = import(&reshape_to(&[0, 3, -1])).unwrap();
    assert!(matches!(&m.nodes()[0].layer, Layer::Reshape { shape } if shape == &[3, 2]));
    let m = import(&reshape_to(&[0, 0, 3])).unwrap();
    assert!(matches!(&m.nodes()[0].layer, Layer::Reshape { shape } if shape == &[2, 3]));
    assert_err(&reshape_to(&[-1, 3]), "batch axis must stay");
    assert_err(&reshape_to(&[2, -1]), "batch axis must stay");
    assert_err(&reshape_to(&[0, -1, -1]), "not supported");
    // A Constant node may supply the shape.
    let m = model(
        14,
        vec![
            node("Constant", "k", &[], &["shape"], vec![attr_ints("value_ints", &[0, 6])]),
            node("Reshape", "r", &["input", "shape"], &["logits"], vec![]),
        ],
        vec![],
        &[2, 3],
        "logits",
    );
    assert_eq!(kinds(&import(&m).unwrap()), ["flatten"]);
    // Flatten with axis 2 keeps axis 1.
    let m = model(
        13,
        vec![node("Flatten", "f", &["input"], &["logits"], vec![attr_int("axis", 2)])],
        vec![],
        &[2, 3, 4],
        "logits",
    );
    assert!(
        matches!(&import(&m).unwrap().nodes()[0].layer, Layer::Reshape { shape } if shape == &[2, 12])
    );
}

fn gemm(attrs: Vec<skepsis_nn::onnx::proto::AttributeProto>, b_dims: &[i64]) -> ModelProto {
    model(
        13,
        vec![node("Gemm", "fc", &["input", "B", "C"], &["logits"], attrs)],
        vec![double_tensor("B", b_dims, &values(3, 6)), double_tensor("C", &[3], &values(4, 3))],
        &[2],
        "logits",
    )
}

#[test]
fn gemm_folds_alpha_beta_and_transposition() {
    let m =
        import(&gemm(vec![attr_float("alpha", 2.0), attr_float("beta", 0.5)], &[2, 3])).unwrap();
    let (b, c) = (values(3, 6), values(4, 3));
    let x = values(5, 4);
    let y = m.forward(&Tensor::from_vec(x.clone(), (2, 2), &Device::Cpu).unwrap()).unwrap();
    let y = y.to_vec2::<f64>().unwrap();
    for n in 0..2 {
        for o in 0..3 {
            // transB = 0: B is [K = 2, M = 3].
            let e = 2.0 * (x[n * 2] * b[o] + x[n * 2 + 1] * b[3 + o]) + 0.5 * c[o];
            assert!((y[n][o] - e).abs() < 1e-12, "{} vs {e}", y[n][o]);
        }
    }
    let t = import(&gemm(vec![attr_int("transB", 1)], &[3, 2])).unwrap();
    let Layer::Linear(l) = &t.nodes()[0].layer else { panic!("linear") };
    assert_eq!(l.weight.flatten_all().unwrap().to_vec1::<f64>().unwrap(), b);
    assert_err(&gemm(vec![attr_int("transA", 1)], &[2, 3]), "transA");
    assert_err(&gemm(vec![], &[3, 2]), "does not match K");
}

fn conv_model(
    attrs: Vec<skepsis_nn::onnx::proto::AttributeProto>,
    w_dims: &[i64],
    sample: &[i64],
) -> ModelProto {
    let n = w_dims.iter().product::<i64>() as usize;
    model(
        17,
        vec![node("Conv", "conv", &["input", "conv.weight"], &["logits"], attrs)],
        vec![double_tensor("conv.weight", w_dims, &values(9, n))],
        sample,
        "logits",
    )
}

#[test]
fn conv_padding_groups_and_dilation() {
    let same_lower = conv_model(
        vec![attr_string("auto_pad", "SAME_LOWER"), attr_ints("strides", &[2, 2])],
        &[1, 1, 2, 2],
        &[1, 5, 5],
    );
    let m = import(&same_lower).unwrap();
    let Layer::Conv2d(c) = &m.nodes()[0].layer else { panic!("conv") };
    // ceil(5 / 2) = 3 outputs need (3 - 1) * 2 + 2 = 6 rows: one padded row, before.
    assert_eq!(c.spec.padding, Padding2d { top: 1, bottom: 0, left: 1, right: 0 });
    let grouped = conv_model(
        vec![
            attr_int("group", 2),
            attr_ints("dilations", &[2, 1]),
            attr_ints("pads", &[0, 1, 2, 0]),
        ],
        &[4, 1, 3, 3],
        &[2, 7, 6],
    );
    let m = import(&grouped).unwrap();
    let Layer::Conv2d(c) = &m.nodes()[0].layer else { panic!("conv") };
    assert_eq!((c.spec.groups, c.spec.dilation), (2, [2, 1]));
    assert_eq!(c.spec.padding, Padding2d { top: 0, left: 1, bottom: 2, right: 0 });
    let x = Tensor::zeros((1, 2, 7, 6), candle_core::DType::F64, &Device::Cpu).unwrap();
    // Rows: 7 + 2 - (2 * 2 + 1) + 1 = 5; columns: 6 + 1 - 3 + 1 = 5.
    assert_eq!(m.forward(&x).unwrap().dims(), [1, 4, 5, 5]);
    assert_err(&conv_model(vec![attr_int("group", 3)], &[4, 1, 3, 3], &[2, 7, 6]), "group 3");
    assert_err(
        &conv_model(
            vec![attr_string("auto_pad", "VALID"), attr_ints("pads", &[1, 1, 1, 1])],
            &[1, 1, 1, 1],
            &[1, 3, 3],
        ),
        "cannot be combined",
    );
    assert_err(&conv_model(vec![], &[1, 1, 3], &[1, 3]), "only 2-D");
}

fn pool(op: &str, attrs: Vec<skepsis_nn::onnx::proto::AttributeProto>) -> ModelProto {
    model(17, vec![node(op, "pool", &["input"], &["logits"], attrs)], vec![], &[2, 6, 6], "logits")
}

#[test]
fn pooling_attributes() {
    let k = || attr_ints("kernel_shape", &[3, 3]);
    let m = import(&pool("AveragePool", vec![k(), attr_ints("pads", &[1, 1, 1, 1])])).unwrap();
    let Layer::AvgPool2d(s) = &m.nodes()[0].layer else { panic!("avgpool") };
    assert!(!s.count_include_pad, "ONNX's default is count_include_pad = 0");
    let m = import(&pool("AveragePool", vec![k(), attr_int("count_include_pad", 1)])).unwrap();
    let Layer::AvgPool2d(s) = &m.nodes()[0].layer else { panic!("avgpool") };
    assert!(s.count_include_pad);
    assert_err(&pool("AveragePool", vec![k(), attr_int("ceil_mode", 1)]), "ceil_mode=1");
    assert_err(&pool("MaxPool", vec![k(), attr_ints("dilations", &[2, 2])]), "dilated");
    assert_err(&pool("MaxPool", vec![k(), attr_ints("pads", &[3, 0, 0, 0])]), "padding");
    assert_err(&pool("MaxPool", vec![]), "kernel_shape");
    let m = import(&pool("MaxPool", vec![k(), attr_string("auto_pad", "SAME_UPPER")])).unwrap();
    let Layer::MaxPool2d(s) = &m.nodes()[0].layer else { panic!("maxpool") };
    assert_eq!(s.padding, Padding2d { top: 1, bottom: 1, left: 1, right: 1 });
    let m = import(&pool("GlobalAveragePool", vec![])).unwrap();
    assert!(matches!(m.nodes()[0].layer, Layer::AdaptiveAvgPool2d { output_size: [1, 1] }));
}

fn softmax(opset: i64, sample: &[i64], axis: Option<i64>) -> ModelProto {
    let attrs = axis.map(|a| vec![attr_int("axis", a)]).unwrap_or_default();
    model(
        opset,
        vec![node("Softmax", "sm", &["input"], &["logits"], attrs)],
        vec![],
        sample,
        "logits",
    )
}

#[test]
fn softmax_axis_semantics_follow_the_opset() {
    for opset in [11, 13] {
        for axis in [None, Some(1), Some(-1)] {
            assert_eq!(kinds(&import(&softmax(opset, &[5], axis)).unwrap()), ["softmax"]);
        }
    }
    // Before 13, axis 1 on [N, C, H, W] is a softmax over C*H*W.
    assert_err(&softmax(11, &[2, 3, 3], Some(1)), "only the class axis");
    assert_eq!(kinds(&import(&softmax(13, &[2, 3, 3], Some(1))).unwrap()), ["softmax"]);
    assert_err(&softmax(13, &[2, 3, 3], None), "only the class axis");
}

#[test]
fn dropout_identity_constant_and_activations() {
    let m = model(
        11,
        vec![
            node("Dropout", "drop", &["input"], &["a", "mask"], vec![attr_float("ratio", 0.3)]),
            node("LeakyRelu", "lrelu", &["a"], &["b"], vec![attr_float("alpha", 0.2)]),
            node("Sigmoid", "sig", &["b"], &["c"], vec![]),
            node("Tanh", "tanh", &["c"], &["d"], vec![]),
            node("Identity", "id", &["d"], &["logits"], vec![]),
        ],
        vec![],
        &[3],
        "logits",
    );
    let m = import(&m).unwrap();
    assert_eq!(kinds(&m), ["dropout", "leaky_relu", "sigmoid", "tanh", "identity"]);
    assert!(matches!(m.nodes()[0].layer, Layer::Dropout { p } if p == 0.3));
    assert!(
        matches!(m.nodes()[1].layer, Layer::LeakyRelu { negative_slope } if negative_slope == 0.2)
    );
    // Opset 13: ratio and training_mode are inputs; an Identity of a weight stays a constant.
    let m = model(
        13,
        vec![
            node("Constant", "r", &[], &["ratio"], vec![attr_float("value_float", 0.25)]),
            node("Dropout", "drop", &["input", "ratio", "train"], &["a"], vec![]),
            node("Identity", "w_id", &["w"], &["w2"], vec![]),
            node("MatMul", "fc", &["a", "w2"], &["logits"], vec![]),
        ],
        vec![double_tensor("w", &[3, 2], &values(1, 6)), bool_false("train")],
        &[3],
        "logits",
    );
    let m = import(&m).unwrap();
    assert_eq!(kinds(&m), ["dropout", "linear"]);
    // A used Dropout mask cannot be imported.
    let m = model(
        11,
        vec![
            node("Dropout", "drop", &["input"], &["a", "mask"], vec![]),
            node("Add", "add", &["a", "mask"], &["logits"], vec![]),
        ],
        vec![],
        &[3],
        "logits",
    );
    assert_err(&m, "output 1 ('mask') is used");
}

fn bool_false(name: &str) -> skepsis_nn::onnx::proto::TensorProto {
    skepsis_nn::onnx::proto::TensorProto {
        name: name.into(),
        data_type: skepsis_nn::onnx::proto::data_type::BOOL,
        raw_data: Some(vec![0]),
        ..Default::default()
    }
}

#[test]
fn batch_norm_and_unknown_attributes() {
    let bn = |attrs| {
        model(
            15,
            vec![node(
                "BatchNormalization",
                "bn",
                &["input", "bn.weight", "b", "m", "v"],
                &["logits"],
                attrs,
            )],
            vec![
                double_tensor("bn.weight", &[2], &[1.0, 2.0]),
                double_tensor("b", &[2], &[0.0, 0.1]),
                double_tensor("m", &[2], &[0.5, -0.5]),
                double_tensor("v", &[2], &[1.0, 4.0]),
            ],
            &[2, 2, 2],
            "logits",
        )
    };
    let m = import(&bn(vec![attr_float("epsilon", 1e-3)])).unwrap();
    let Layer::BatchNorm2d(b) = &m.nodes()[0].layer else { panic!("bn") };
    assert_eq!((m.nodes()[0].name.as_str(), b.eps), ("bn", 1e-3));
    assert_err(&bn(vec![attr_int("training_mode", 1)]), "training_mode=1");
    assert_err(&bn(vec![attr_int("spatial", 1)]), "attribute 'spatial' is not supported");
}

#[test]
fn graph_level_checks() {
    let relu = || vec![node("Relu", "relu", &["input"], &["logits"], vec![])];
    for opset in [10, 22] {
        assert_err(&model(opset, relu(), vec![], &[3], "logits"), "not supported");
    }
    let mut m = model(17, relu(), vec![], &[3], "logits");
    m.opset_import.clear();
    assert_err(&m, "no opset");
    let mut m = model(17, relu(), vec![], &[3], "logits");
    let g = m.graph.as_mut().unwrap();
    g.input.push(value_info("other", &[None, Some(3)]));
    assert_err(&m, "2 inputs");
    let mut m = model(17, relu(), vec![], &[3], "logits");
    m.graph.as_mut().unwrap().value_info.push(value_info("logits", &[None, Some(4)]));
    assert_err(&m, "declares");
    let mut m = model(17, relu(), vec![], &[3], "logits");
    m.graph.as_mut().unwrap().input[0] = value_info("input", &[None, None]);
    assert_err(&m, "only the batch axis may be dynamic");
}

#[test]
fn node_names_are_sanitized_and_unique() {
    let nodes = vec![
        node("Relu", "a", &["input"], &["x1"], vec![]),
        node("Relu", "a", &["x1"], &["x2"], vec![]),
        node("Relu", "input", &["x2"], &["x3"], vec![]),
        node("Relu", "", &["x3"], &["x4"], vec![]),
        node("Relu", "onnx::Relu 5", &["x4"], &["logits"], vec![]),
    ];
    let m = import(&model(17, nodes, vec![], &[3], "logits")).unwrap();
    let names: Vec<&str> = m.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "a_2", "input_node", "relu_3", "onnx__Relu_5"]);
    // Error variants are typed.
    let cyc = vec![
        node("Relu", "r1", &["x2"], &["x1"], vec![]),
        node("Relu", "r2", &["x1"], &["x2"], vec![]),
        node("Add", "out", &["x2", "input"], &["logits"], vec![]),
    ];
    assert!(
        matches!(import(&model(17, cyc, vec![], &[3], "logits")), Err(Error::OnnxGraph(m)) if m.contains("cycle"))
    );
}
