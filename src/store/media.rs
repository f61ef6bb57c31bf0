//! Uploaded images (see `issues::media`): kept in the database under their hash, so that
//! every instance serves the same ones.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Creation;
use crate::issues::media::{Format, ProcessedImage, media_path};

/// An image to keep, and who uploaded it.
#[derive(Clone, Debug)]
pub struct NewMedia<'a> {
    pub image: &'a ProcessedImage,
    /// The name it was uploaded under, to recognise it in the library.
    pub file_name: &'a str,
    pub uploaded_by: &'a str,
    pub now: DateTime<Utc>,
}

/// An image in the library, without its bytes.
#[derive(Clone, Debug)]
pub struct MediaItem {
    pub hash: String,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub byte_count: i64,
    pub file_name: String,
    pub uploaded_by: String,
    pub created_at: DateTime<Utc>,
}

impl MediaItem {
    /// The path it is served at.
    pub fn path(&self) -> String {
        media_path(&self.hash, self.width, self.height, self.format)
    }
}

/// An image's bytes, to serve.
#[derive(Clone, Debug)]
pub struct MediaFile {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Keeps an image; `Taken` if the same bytes are kept already (nothing changes).
    async fn save_media(&self, media: &NewMedia<'_>) -> anyhow::Result<Creation>;
    async fn media_file(&self, hash: &str) -> anyhow::Result<Option<MediaFile>>;
    /// The newest `limit` images, newest first.
    async fn media_library(&self, limit: i64) -> anyhow::Result<Vec<MediaItem>>;
}
