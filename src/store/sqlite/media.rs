//! Uploaded images, kept under their hash.

use anyhow::Context;
use async_trait::async_trait;

use super::{SqliteStore, rows::ms};
use crate::store::{Creation, MediaFile, MediaItem, MediaStore, NewMedia, creation, mapping};

#[async_trait]
impl MediaStore for SqliteStore {
    async fn save_media(&self, media: &NewMedia<'_>) -> anyhow::Result<Creation> {
        let image = media.image;
        let inserted = sqlx::query(
            "INSERT INTO media (hash, content_type, width, height, byte_count, bytes, file_name, uploaded_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&image.hash)
        .bind(image.format.content_type())
        .bind(i64::from(image.width))
        .bind(i64::from(image.height))
        .bind(image.bytes.len() as i64)
        .bind(&image.bytes)
        .bind(media.file_name)
        .bind(media.uploaded_by)
        .bind(ms(media.now))
        .execute(&self.writer)
        .await;
        creation(inserted, "Failed to keep an image")
    }

    async fn media_file(&self, hash: &str) -> anyhow::Result<Option<MediaFile>> {
        let row =
            sqlx::query("SELECT content_type, width, height, bytes FROM media WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.reader)
                .await
                .context("Failed to load an image")?;
        row.as_ref().map(mapping::media_file).transpose()
    }

    async fn media_library(&self, limit: i64) -> anyhow::Result<Vec<MediaItem>> {
        let rows = sqlx::query(
            "SELECT hash, content_type, width, height, byte_count, file_name, uploaded_by, created_at
             FROM media ORDER BY created_at DESC, hash LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .context("Failed to load the image library")?;
        rows.iter().map(mapping::media_item).collect()
    }
}
