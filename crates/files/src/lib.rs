//! Where file bytes are kept: [`LocalObjects`] (a directory under `data_dir`, the embedded
//! default) or [`S3Objects`] (S3-compatible object storage through the `object_store`
//! crate). Both implement `switchyard_core::files::ObjectStore`; the file service in
//! `switchyard-engine` streams through them and never holds a whole file in memory.

mod local;
mod s3;

use std::path::Path;
use std::sync::Arc;

use switchyard_core::files::{ObjectStore, valid_object_key};
use switchyard_core::{Error, ErrorCode, Result};

pub use local::LocalObjects;
pub use s3::{S3Objects, S3Options};

/// Opens the storage `url` names: `s3://bucket[/prefix]`, `file:///path`, a plain path,
/// or nothing (`<data_dir>/files`).
pub async fn open(
    url: Option<&str>,
    s3: &S3Options,
    data_dir: &Path,
) -> Result<Arc<dyn ObjectStore>> {
    match url {
        Some(u) if u.starts_with("s3://") => Ok(Arc::new(S3Objects::open(u, s3)?)),
        Some(u) if u.contains("://") && !u.starts_with("file://") => Err(Error::new(
            ErrorCode::InvalidParameter,
            format!("files.url {u:?}: use s3://bucket/prefix, file:///path or a directory"),
        )),
        Some(u) => Ok(Arc::new(
            LocalObjects::open(Path::new(u.strip_prefix("file://").unwrap_or(u))).await?,
        )),
        None => Ok(Arc::new(LocalObjects::open(&data_dir.join("files")).await?)),
    }
}

/// Object keys are made by the server ([`valid_object_key`]); anything else is refused
/// before it can reach a path or a URL.
fn check_key(key: &str) -> Result<()> {
    if valid_object_key(key) {
        Ok(())
    } else {
        Err(Error::internal_msg(format!("invalid object key {key:?}")))
    }
}

fn io_error(context: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| {
        Error::new(
            ErrorCode::Unavailable,
            format!("file storage: {context}: {e}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_outside_are_refused() {
        check_key("ab/0192f3c4-aaaa-7bbb-8ccc-0123456789ab").unwrap();
        check_key("switchyard-20261205-220219-971.backup").unwrap();
        for bad in [
            "", "../x", "a//b", "/a", "a/", "A B", "a\0", "ab/..", "a/./b", "Upper", "a b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
