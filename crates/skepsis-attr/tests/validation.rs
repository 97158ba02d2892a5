//! Invalid parameters are rejected with errors that name the parameter.

mod common;

use candle_core::DType;
use common::{cnn, inputs};
use skepsis_attr::{registry, GradCam, GradCamSettings, Method, Target};

fn spec_error(spec: &str) -> String {
    match registry::parse(spec) {
        Ok(_) => panic!("'{spec}' was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_spec_values_name_the_parameter() {
    for (spec, param) in [
        ("ig:steps=0", "steps"),
        ("ig:steps=1,rule=trapezoid", "steps"),
        ("ig:rule=simpson", "rule"),
        ("ig:baseline=blur,sigma=-1", "sigma"),
        ("ig:baseline=uniform,low=1,high=0", "low"),
        ("ig:batch_size=0", "batch_size"),
        ("smoothgrad:sigma=-0.1", "sigma"),
        ("vargrad:samples=0", "samples"),
        ("smoothgrad:base=lrp", "base"),
        ("gradient-shap:noise_std=-1", "noise_std"),
        ("expected-gradients:samples=0", "samples"),
        ("gradcam:layer=", "layer"),
        ("gradcam:upsample=maybe", "upsample"),
        ("occlusion:window=0;4", "window"),
        ("occlusion:window=4;4,stride=2", "stride"),
        ("occlusion:window=a;b", "window"),
        ("rise:p=0", "p"),
        ("rise:masks=0", "masks"),
        ("cgi:comparison=channel", "comparison"),
        ("cgi:base=ig,steps=0", "steps"),
    ] {
        let e = spec_error(spec);
        assert!(e.contains(&format!("'{param}'")), "{spec}: {e}");
    }
}

#[test]
fn gradcam_layer_must_exist_and_be_a_feature_map() {
    let model = cnn([1, 8, 8], DType::F32);
    let x = inputs(1, [1, 8, 8], 0, DType::F32);
    for (layer, why) in
        [("conv9", "conv9"), ("fc1", "not a [N, C, h, w]"), ("logits", "not a [N, C, h, w]")]
    {
        let m = GradCam::new(GradCamSettings { layer: Some(layer.into()), ..Default::default() })
            .unwrap();
        let e = m.attribute(&model, &x, &Target::Predicted).unwrap_err().to_string();
        assert!(e.contains("'layer'") && e.contains(why), "{layer}: {e}");
    }
    // Without a layer, the last 4-D output is used (pool2 on this CNN).
    let m = GradCam::new(GradCamSettings { upsample: false, ..Default::default() }).unwrap();
    assert_eq!(m.attribute(&model, &x, &Target::Predicted).unwrap().map.dims(), &[1, 1, 2, 2]);
}

#[test]
fn perturbation_windows_must_fit_the_input() {
    let model = cnn([1, 8, 8], DType::F32);
    let x = inputs(1, [1, 8, 8], 0, DType::F32);
    let m = registry::parse("occlusion:window=9;9,stride=1;1").unwrap();
    let e = m.attribute(&model, &x, &Target::Predicted).unwrap_err().to_string();
    assert!(e.contains("'window'"), "{e}");
    let m = registry::parse("ig:baseline=constant,value=0.5").unwrap();
    assert!(m.name().contains("baseline=constant"));
}
