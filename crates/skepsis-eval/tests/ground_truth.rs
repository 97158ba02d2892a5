//! Ground-truth metrics (Kim et al. 2022): the protocol's AFL toy check and hand-made masks.

use skepsis_eval::ground_truth::{
    attribution_focus_level, box_blur, focus_distribution, intersection_over_union,
    mean_attribution_focus_level, reduce_channels, BlurBoundary, ChannelReduction, FocusOptions,
    PixelBox, RegionMask,
};
use skepsis_eval::{EvalError, MapDims};

const NO_BLUR: FocusOptions = FocusOptions { blur_size: 1, boundary: BlurBoundary::Reflect101 };

/// The protocol's toy scene: 64x64, primary box 13x19 = 247 px at 1, secondary 10x10 = 100 px
/// at 0.8, background 0.001.
fn toy_scene(primary: PixelBox, secondary: PixelBox) -> Vec<f64> {
    let (h, w) = (64, 64);
    let mut map = vec![0.001; h * w];
    for (b, v) in [(primary, 1.0), (secondary, 0.8)] {
        for r in b.y0..b.y1 {
            map[r * w + b.x0..r * w + b.x1].fill(v);
        }
    }
    map
}

#[test]
fn afl_toy_check_of_the_protocol_holds_without_blur() {
    // Min-max scaling maps background 0.001 -> 0, primary 1 -> 1, secondary 0.8 ->
    // (0.8 - 0.001) / 0.999 = 0.7998. Total mass 247 + 79.98 = 326.98, so
    // AFL_P = 247 / 326.98 = 0.75540 and AFL_S = 79.98 / 326.98 = 0.24460: the protocol's
    // numbers, for any placement of two disjoint boxes inside the map.
    let secondary_scaled = 0.799 / 0.999;
    let total = 247.0 + 100.0 * secondary_scaled;
    for (primary, secondary) in [
        (PixelBox::new(10, 10, 23, 29), PixelBox::new(40, 40, 50, 50)),
        (PixelBox::new(0, 0, 19, 13), PixelBox::new(54, 54, 64, 64)),
    ] {
        assert_eq!((primary.area(), secondary.area()), (247, 100));
        let map = toy_scene(primary, secondary);
        let p = RegionMask::from_boxes(64, 64, &[primary]).unwrap();
        let s = RegionMask::from_boxes(64, 64, &[secondary]).unwrap();
        let afl_p = attribution_focus_level(&map, 64, 64, &p, &NO_BLUR).unwrap();
        let afl_s = attribution_focus_level(&map, 64, 64, &s, &NO_BLUR).unwrap();
        assert!((afl_p.value - 247.0 / total).abs() < 1e-12);
        assert!((afl_s.value - 100.0 * secondary_scaled / total).abs() < 1e-12);
        assert!((afl_p.value - 0.7554).abs() < 5e-5 && (afl_s.value - 0.2446).abs() < 5e-5);
        assert!(!afl_p.constant_map);
    }
}

#[test]
fn afl_toy_scene_with_smerf_blur_leaks_mass_out_of_the_boxes() {
    // With SMERF's 7x7 blur the boxes' edges spread into the background, so both AFLs drop
    // below the unblurred toy values (0.7554 / 0.2446) while primary focus still exceeds
    // secondary focus. The protocol's toy numbers therefore describe the unblurred map.
    let (primary, secondary) = (PixelBox::new(10, 10, 23, 29), PixelBox::new(40, 40, 50, 50));
    let map = toy_scene(primary, secondary);
    let p = RegionMask::from_boxes(64, 64, &[primary]).unwrap();
    let s = RegionMask::from_boxes(64, 64, &[secondary]).unwrap();
    let smerf = FocusOptions::default();
    let afl_p = attribution_focus_level(&map, 64, 64, &p, &smerf).unwrap().value;
    let afl_s = attribution_focus_level(&map, 64, 64, &s, &smerf).unwrap().value;
    assert!(afl_p < 0.7554 && afl_s < 0.2446, "{afl_p} {afl_s}");
    assert!(afl_p > afl_s && afl_p + afl_s < 1.0);
    // Interior boxes: zero padding changes only how the background normalizes, slightly.
    let zero = FocusOptions { blur_size: 7, boundary: BlurBoundary::Zero };
    let afl_p_zero = attribution_focus_level(&map, 64, 64, &p, &zero).unwrap().value;
    assert!((afl_p_zero - afl_p).abs() < 1e-2);
}

#[test]
fn blur_spreads_a_point_into_a_seven_by_seven_square() {
    // One bright pixel at (10, 10) of a 21x21 zero map: the 7x7 mean filter gives 1/49 on the
    // square rows/cols 7..=13 and 0 elsewhere; min-max -> 1 on the square; / 49 -> 1/49 each.
    // AFL on that square = 1; MAFL = 1/49; AFL on the pixel alone = 1/49.
    let (h, w) = (21, 21);
    let mut map = vec![0.0; h * w];
    map[10 * w + 10] = 1.0;
    let blurred = box_blur(&map, h, w, 7, BlurBoundary::Reflect101).unwrap();
    assert!((blurred[7 * w + 7] - 1.0 / 49.0).abs() < 1e-15 && blurred[6 * w + 7] == 0.0);
    let square = RegionMask::from_boxes(h, w, &[PixelBox::new(7, 7, 14, 14)]).unwrap();
    let pixel = RegionMask::from_boxes(h, w, &[PixelBox::new(10, 10, 11, 11)]).unwrap();
    let opts = FocusOptions::default();
    assert!(
        (attribution_focus_level(&map, h, w, &square, &opts).unwrap().value - 1.0).abs() < 1e-12
    );
    assert!(
        (mean_attribution_focus_level(&map, h, w, &square, &opts).unwrap().value - 1.0 / 49.0)
            .abs()
            < 1e-12
    );
    assert!(
        (attribution_focus_level(&map, h, w, &pixel, &opts).unwrap().value - 1.0 / 49.0).abs()
            < 1e-12
    );
}

/// 4x4 map with 4 at (1,1), 2 at (1,2), 1 at (3,3), 0 elsewhere.
fn small_map() -> Vec<f64> {
    let mut map = vec![0.0; 16];
    map[5] = 4.0;
    map[6] = 2.0;
    map[15] = 1.0;
    map
}

#[test]
fn mafl_on_hand_made_masks() {
    // Min-max: max 4 -> values 1, 0.5, 0.25; total 1.75 -> p = 4/7, 2/7, 1/7.
    let map = small_map();
    let d = focus_distribution(&map, 4, 4, &NO_BLUR).unwrap();
    // Box rows 1..3, cols 1..3 (4 px) holds 4/7 + 2/7 = 6/7: AFL 6/7, MAFL 6/28.
    let square = RegionMask::from_boxes(4, 4, &[PixelBox::new(1, 1, 3, 3)]).unwrap();
    assert!((d.afl(&square).unwrap().value - 6.0 / 7.0).abs() < 1e-12);
    assert!((d.mafl(&square).unwrap().value - 6.0 / 28.0).abs() < 1e-12);
    // Mask {(1,2), (3,3)} (not a box): AFL 3/7, MAFL 3/14.
    let mut inside = vec![false; 16];
    inside[6] = true;
    inside[15] = true;
    let mask = RegionMask::from_mask(4, 4, inside).unwrap();
    assert!((d.afl(&mask).unwrap().value - 3.0 / 7.0).abs() < 1e-12);
    assert!((d.mafl(&mask).unwrap().value - 3.0 / 14.0).abs() < 1e-12);
    // Union of two boxes equals the mask of their pixels.
    let union =
        RegionMask::from_boxes(4, 4, &[PixelBox::new(2, 1, 3, 2), PixelBox::new(3, 3, 4, 4)])
            .unwrap();
    assert_eq!(union, mask);
}

#[test]
fn iou_on_hand_made_masks() {
    // keep = 2 -> the two largest pixels {5, 6}. Object A = cols 1..3 of row 1 = {5, 6}:
    // IoU 1. Object B = cols 2..4 of row 1 = {6, 7}: |{6}| / |{5, 6, 7}| = 1/3. Mean 2/3.
    let map = small_map();
    let a = RegionMask::from_boxes(4, 4, &[PixelBox::new(1, 1, 3, 2)]).unwrap();
    let b = RegionMask::from_boxes(4, 4, &[PixelBox::new(2, 1, 4, 2)]).unwrap();
    let one = intersection_over_union(&map, 4, 4, std::slice::from_ref(&a), 2, &NO_BLUR).unwrap();
    assert!((one.value - 1.0).abs() < 1e-12);
    let both = intersection_over_union(&map, 4, 4, &[a.clone(), b], 2, &NO_BLUR).unwrap();
    assert!((both.value - 2.0 / 3.0).abs() < 1e-12);
    // keep = 3 adds pixel 15: A -> 2/3.
    let three = intersection_over_union(&map, 4, 4, std::slice::from_ref(&a), 3, &NO_BLUR).unwrap();
    assert!((three.value - 2.0 / 3.0).abs() < 1e-12);
    assert!(intersection_over_union(&map, 4, 4, &[], 2, &NO_BLUR).is_err());
    assert!(intersection_over_union(&map, 4, 4, &[a], 17, &NO_BLUR).is_err());
}

#[test]
fn constant_map_falls_back_to_uniform_focus() {
    let region = RegionMask::from_boxes(8, 8, &[PixelBox::new(0, 0, 4, 4)]).unwrap();
    let afl = attribution_focus_level(&[0.3; 64], 8, 8, &region, &FocusOptions::default()).unwrap();
    assert!(afl.constant_map);
    assert!((afl.value - 16.0 / 64.0).abs() < 1e-12);
}

#[test]
fn channel_reductions() {
    // channels [-3, 1] and [2, -5]: max |.| = [3, 5]; signed sum = [-1, -4]
    let map = [-3.0, 1.0, 2.0, -5.0];
    let dims = MapDims::channels(2, 1, 2);
    assert_eq!(reduce_channels(&map, dims, ChannelReduction::MaxAbs).unwrap(), vec![3.0, 5.0]);
    assert_eq!(reduce_channels(&map, dims, ChannelReduction::SignedSum).unwrap(), vec![-1.0, -4.0]);
}

#[test]
fn invalid_regions_are_typed_errors() {
    let outside = RegionMask::from_boxes(8, 8, &[PixelBox::new(4, 4, 9, 6)]);
    assert!(matches!(outside, Err(EvalError::InvalidRegion { .. })));
    assert!(RegionMask::from_boxes(8, 8, &[]).is_err());
    assert!(RegionMask::from_boxes(8, 8, &[PixelBox::new(3, 3, 3, 5)]).is_err());
    assert!(RegionMask::from_mask(2, 2, vec![false; 4]).is_err());
    let region = RegionMask::from_boxes(8, 8, &[PixelBox::new(0, 0, 2, 2)]).unwrap();
    assert!(attribution_focus_level(&[0.0; 16], 4, 4, &region, &NO_BLUR).is_err());
    assert!(box_blur(&[0.0; 16], 4, 4, 4, BlurBoundary::Zero).is_err());
    assert_eq!(PixelBox::from_smerf(1, 3, 5, 9), PixelBox::new(5, 1, 9, 3));
}
