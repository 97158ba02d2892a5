//! skepsis-data: the data sets skepsis runs on.
//!
//! - [`Dataset`]: images `[N, C, H, W]`, labels, class names, optional ground-truth
//!   [`Region`]s and generator buckets; subsets, batches, seeded label permutation and splits.
//! - Loaders for data the user already has: MNIST / Fashion-MNIST IDX ([`load_idx`],
//!   [`load_mnist_dir`]), CIFAR-10 binary batches ([`load_cifar10_dir`]), image folders
//!   ([`load_image_folder`]) and single images ([`load_image`]), all through a [`Preprocessing`]
//!   description.
//! - Generators, deterministic from a `u64` seed: synthetic digits ([`digits`]), the SMERF
//!   scenes ([`smerf`]) and BlockMNIST ([`blockmnist`]).
//! - The on-disk format ([`store`]) and a sample grid for `skepsis data show` ([`show`]).
//!
//! Nothing here downloads anything.

#![warn(missing_docs)]

pub mod blockmnist;
mod cifar;
mod dataset;
pub mod digits;
mod error;
mod fileio;
mod folder;
mod font;
mod idx;
pub mod preprocess;
mod region;
mod rng;
pub mod show;
pub mod smerf;
pub mod store;

pub use blockmnist::{block_mnist, generate_block_digits, BlockMnistConfig, NullBlock};
pub use cifar::{load_cifar10_dir, load_cifar10_files, read_cifar10_batch, CIFAR10_CLASSES};
pub use dataset::{Batch, Batches, Dataset, Splits};
pub use digits::{generate_digits, DigitsConfig};
pub use error::{Error, Result};
pub use folder::{load_image, load_image_folder};
pub use idx::{
    load_idx, load_mnist_dir, read_idx_images, read_idx_labels, IdxImages, FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
};
pub use preprocess::{ColorMode, PreprocessError, Preprocessing};
pub use region::{BoundingBox, Mask, Region, RegionKind, RegionShape};
pub use show::{sample_grid, GridOptions};
pub use smerf::{generate_smerf, Background, SmerfConfig, SmerfSetup};
pub use store::{read_dataset, write_dataset, DatasetInfo, StoredDataset};
