//! Reading whole files, transparently gunzipped, with errors that name the file.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Upper bound on the decompressed size of a gzip file (a guard against decompression bombs;
/// the full MNIST training images are 47 MB).
const MAX_DECOMPRESSED: u64 = 8 << 30;

/// The bytes of `path`, gunzipped when the file starts with the gzip magic `1f 8b`.
///
/// Memory grows with the data actually read, never with a size declared inside the file.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.len() < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
        return Ok(raw);
    }
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(raw.as_slice());
    decoder
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(path, format!("corrupt or truncated gzip data: {e}")))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(Error::corrupt(
            path,
            format!("decompresses to more than {MAX_DECOMPRESSED} bytes"),
        ));
    }
    Ok(out)
}

/// The first existing path among `candidates`, or [`Error::MissingFile`] for the first one.
pub(crate) fn first_existing(candidates: &[std::path::PathBuf]) -> Result<std::path::PathBuf> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::MissingFile { path: candidates.first().cloned().unwrap_or_default() })
}
