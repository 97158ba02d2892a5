//! SMERF scoring of `[C,H,W]` maps against skepsis-data regions (Kim et al. 2022): the
//! protocol's AFL toy case through the whole pipeline (channel reduction included), MAFL and
//! IoU on hand-made multi-box regions, the IoU pixel budget, missing regions and the seeded
//! image choice.

use skepsis_data::{
    generate_smerf, Background, BoundingBox, Region, RegionKind, SmerfConfig, SmerfSetup,
};
use skepsis_eval::ground_truth::{BlurBoundary, ChannelReduction, FocusOptions};
use skepsis_eval::smerf::{score_map, select_images, IouKeep, ScoringOptions};
use skepsis_eval::MapDims;

const H: usize = 64;
const W: usize = 64;

fn options(blur_size: usize, iou_keep: IouKeep) -> ScoringOptions {
    ScoringOptions {
        focus: FocusOptions { blur_size, boundary: BlurBoundary::Reflect101 },
        reduction: ChannelReduction::MaxAbs,
        iou_keep,
    }
}

fn fill(map: &mut [f64], channel: usize, b: BoundingBox, v: f64) {
    for y in b.y0..b.y1 {
        for x in b.x0..b.x1 {
            map[channel * H * W + y * W + x] = v;
        }
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn toy_case_of_the_protocol_through_the_smerf_pipeline() {
    // Three channels; max |.| over channels gives primary 1 (13x19 = 247 px, as the text box),
    // secondary 0.8 (10x10 = 100 px, as Box1, written as -0.8 in channel 2 so |.| matters),
    // background 0.001. Unblurred: AFL_P = 247 / (247 + 100 * 0.799/0.999) = 0.75540,
    // AFL_S = 0.24460; MAFL = AFL / area; IoU keeping the primary area (247 px) keeps exactly
    // the primary box: IoU_P = 1, IoU_S = 0.
    let text = BoundingBox::from_origin(8, 6, 19, 13);
    let box1 = BoundingBox::from_origin(40, 44, 10, 10);
    let mut map = vec![0.001; 3 * H * W];
    fill(&mut map, 0, text, 1.0);
    fill(&mut map, 1, text, 0.3);
    fill(&mut map, 2, box1, -0.8);
    let regions = vec![
        Region::new_box(RegionKind::Primary, "text", text),
        Region::new_box(RegionKind::Secondary, "box1", box1),
    ];
    let dims = MapDims::channels(3, H, W);
    let s = score_map(&map, dims, &regions, &options(1, IouKeep::PrimaryArea)).unwrap().scores;
    let total = 247.0 + 100.0 * 0.799 / 0.999;
    assert!(close(s.primary_afl, 247.0 / total) && close(s.secondary_afl, 79.9 / 0.999 / total));
    assert!((s.primary_afl.unwrap() - 0.7554).abs() < 5e-5);
    assert!((s.secondary_afl.unwrap() - 0.2446).abs() < 5e-5);
    assert!(close(s.primary_mafl, 1.0 / total) && close(s.secondary_mafl, 0.799 / 0.999 / total));
    assert!(close(s.primary_iou, 1.0) && close(s.secondary_iou, 0.0));
    // SMERF's 7x7 blur (the default) leaks mass out of both boxes; the order is kept.
    let b = score_map(&map, dims, &regions, &ScoringOptions::default()).unwrap().scores;
    let (p, q) = (b.primary_afl.unwrap(), b.secondary_afl.unwrap());
    assert!(p < 0.7554 && q < 0.2446 && p > q, "{p} {q}");
}

#[test]
fn two_box_primary_region_mafl_and_iou() {
    // Complex setups have two primary boxes (Box1 10x10 and Box2 4x4). Map: 1 on Box1, 0.5 on
    // Box2, 0 elsewhere, one channel. Unblurred: p = 1/108 on Box1, 0.5/108 on Box2
    // (total 100 + 16 * 0.5 = 108): AFL_P = 1, MAFL_P = 1 / 116 (union area 116).
    // IoU keeping 116 px keeps exactly the union, and SMERF scores each box against the whole
    // kept set: IoU(Box1) = 100/116, IoU(Box2) = 16/116, mean 58/116 = 0.5 even for this
    // perfect map (a property of SMERF's per-box IoU that skepsis keeps).
    let box1 = BoundingBox::from_origin(5, 5, 10, 10);
    let box2 = BoundingBox::from_origin(40, 50, 4, 4);
    let text = BoundingBox::from_origin(30, 10, 19, 13);
    let mut map = vec![0.0; H * W];
    fill(&mut map, 0, box1, 1.0);
    fill(&mut map, 0, box2, 0.5);
    let regions = vec![
        Region::new_box(RegionKind::Primary, "box1", box1),
        Region::new_box(RegionKind::Primary, "box2", box2),
        Region::new_box(RegionKind::Secondary, "text", text),
    ];
    let dims = MapDims::channels(1, H, W);
    let s = score_map(&map, dims, &regions, &options(1, IouKeep::PrimaryArea)).unwrap().scores;
    assert!(close(s.primary_afl, 1.0) && close(s.primary_mafl, 1.0 / 116.0));
    assert!(close(s.primary_iou, 0.5));
    assert!(close(s.secondary_afl, 0.0) && close(s.secondary_iou, 0.0));

    // Only Box1 lit: keep 116 = Box1's 100 px + 16 zero-valued pixels chosen by row-major
    // order (rows 0.., far from Box2): IoU(Box1) = 100/116, IoU(Box2) = 0, mean 50/116.
    let mut only_box1 = vec![0.0; H * W];
    fill(&mut only_box1, 0, box1, 1.0);
    let s =
        score_map(&only_box1, dims, &regions, &options(1, IouKeep::PrimaryArea)).unwrap().scores;
    assert!(close(s.primary_iou, 50.0 / 116.0), "{:?}", s.primary_iou);
    assert!(close(s.primary_mafl, 1.0 / 116.0));

    // RegionArea budget for the secondary region: keep 247 px (the text's area) instead of 116.
    let mut on_text = vec![0.0; H * W];
    fill(&mut on_text, 0, text, 1.0);
    let shared = score_map(&on_text, dims, &regions, &options(1, IouKeep::PrimaryArea)).unwrap();
    let own = score_map(&on_text, dims, &regions, &options(1, IouKeep::RegionArea)).unwrap();
    assert!(close(shared.scores.secondary_iou, 116.0 / 247.0));
    assert!(close(own.scores.secondary_iou, 1.0));
}

#[test]
fn missing_regions_have_no_scores_and_constant_maps_are_flagged() {
    // Setup 1.2, label 0: no primary region (SMERF's -1, dropped before averaging).
    let text = BoundingBox::from_origin(30, 10, 19, 13);
    let regions = vec![Region::new_box(RegionKind::Secondary, "text", text)];
    let s = score_map(
        &vec![0.2; H * W],
        MapDims::channels(1, H, W),
        &regions,
        &ScoringOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (s.scores.primary_afl, s.scores.primary_mafl, s.scores.primary_iou),
        (None, None, None)
    );
    // Constant map: uniform focus, AFL = area fraction 247 / 4096.
    assert!(s.constant_map);
    assert!(close(s.scores.secondary_afl, 247.0 / 4096.0));
    // Malformed maps are errors, not NaN.
    let mut bad = vec![0.0; H * W];
    bad[7] = f64::NAN;
    assert!(
        score_map(&bad, MapDims::channels(1, H, W), &regions, &ScoringOptions::default()).is_err()
    );
}

#[test]
fn image_choice_is_seeded_per_bucket() {
    let splits = generate_smerf(&SmerfConfig {
        setup: SmerfSetup::SimpleNr,
        background: Background::Black,
        scale: 0.02, // 10 test images per bucket, 8 buckets
        seed: 0,
    })
    .unwrap();
    let a = select_images(&splits.test, 4, 11).unwrap();
    assert_eq!(a, select_images(&splits.test, 4, 11).unwrap());
    assert_ne!(a, select_images(&splits.test, 4, 12).unwrap());
    let ids = splits.test.bucket_ids().unwrap();
    for bucket in 0..8 {
        assert_eq!(a.iter().filter(|&&i| ids[i] == bucket).count(), 4);
    }
    // A bucket smaller than the request gives all its images.
    assert_eq!(select_images(&splits.test, 50, 11).unwrap().len(), splits.test.len());
}
