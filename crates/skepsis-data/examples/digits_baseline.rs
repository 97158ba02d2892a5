//! Linear baselines on the synthetic digits: nearest centroid and multinomial logistic
//! regression (softmax, minibatch SGD). A linear model well below a CNN's >= 97% shows the data
//! is not trivially separable. Run: `cargo run --release -p skepsis-data --example digits_baseline`.
use skepsis_data::{generate_digits, DigitsConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n_train, n_test) = (20_000, 5_000);
    let s = generate_digits(&DigitsConfig { train: n_train, test: n_test, seed: 2024 })?;
    let xtr: Vec<f32> = s.train.images().flatten_all()?.to_vec1()?;
    let xte: Vec<f32> = s.test.images().flatten_all()?.to_vec1()?;
    let (ytr, yte) = (s.train.labels(), s.test.labels());
    let d = 784;

    // Nearest centroid.
    let mut cent = vec![0f32; 10 * d];
    let mut cnt = [0f32; 10];
    for (i, &l) in ytr.iter().enumerate() {
        cnt[l] += 1.0;
        for p in 0..d {
            cent[l * d + p] += xtr[i * d + p];
        }
    }
    for k in 0..10 {
        cent[k * d..(k + 1) * d].iter_mut().for_each(|v| *v /= cnt[k]);
    }
    let nc = (0..n_test)
        .filter(|&i| {
            let x = &xte[i * d..(i + 1) * d];
            let dist = |k: usize| {
                x.iter().zip(&cent[k * d..]).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
            };
            (0..10).min_by(|&a, &b| dist(a).total_cmp(&dist(b))) == Some(yte[i])
        })
        .count();

    // Softmax regression.
    let mut w = vec![0f32; 10 * (d + 1)];
    let logits = |w: &[f32], x: &[f32]| -> [f32; 10] {
        let mut z = [0f32; 10];
        for (k, zk) in z.iter_mut().enumerate() {
            let row = &w[k * (d + 1)..(k + 1) * (d + 1)];
            *zk = row[d] + row[..d].iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
        }
        z
    };
    let (epochs, batch, lr) = (30, 100, 0.5f32);
    for epoch in 0..epochs {
        let lr = lr / (1.0 + epoch as f32 * 0.2);
        for start in (0..n_train).step_by(batch) {
            let mut g = vec![0f32; w.len()];
            for i in start..(start + batch).min(n_train) {
                let x = &xtr[i * d..(i + 1) * d];
                let z = logits(&w, x);
                let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
                let sum: f32 = e.iter().sum();
                for k in 0..10 {
                    let delta = e[k] / sum - if k == ytr[i] { 1.0 } else { 0.0 };
                    let row = &mut g[k * (d + 1)..(k + 1) * (d + 1)];
                    for p in 0..d {
                        row[p] += delta * x[p];
                    }
                    row[d] += delta;
                }
            }
            for (wv, gv) in w.iter_mut().zip(&g) {
                *wv -= lr * gv / batch as f32;
            }
        }
    }
    let acc = |x: &[f32], y: &[usize]| {
        (0..y.len())
            .filter(|&i| {
                let z = logits(&w, &x[i * d..(i + 1) * d]);
                (0..10).max_by(|&a, &b| z[a].total_cmp(&z[b])) == Some(y[i])
            })
            .count() as f64
            / y.len() as f64
    };
    println!("synthetic digits, {n_train} train / {n_test} test, seed 2024");
    println!("nearest centroid test accuracy: {:.4}", nc as f64 / n_test as f64);
    println!("logistic regression train accuracy: {:.4}", acc(&xtr, ytr));
    println!("logistic regression test accuracy: {:.4}", acc(&xte, yte));
    Ok(())
}
