//! Images staff upload for issues and the logo: recognised by their bytes (never by their
//! name), decoded within limits (a small file that claims a huge picture is refused
//! before any pixel is allocated), turned upright, made at most `MAX_WIDTH` wide and
//! encoded again, which leaves every byte of metadata (EXIF, GPS, comments) behind.
//! The result is kept under the SHA-256 of its bytes and served at
//! `/media/{hash}-{width}x{height}.{ext}`: permanent, and the Markdown renderer reads an
//! image's size from the address alone.

use std::io::Cursor;

use image::{
    AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits,
    codecs::{
        gif::{GifDecoder, GifEncoder, Repeat},
        jpeg::JpegEncoder,
        png::PngEncoder,
    },
    imageops::FilterType,
};

/// The widest an image is kept: twice the mail's column, for sharp screens.
pub const MAX_WIDTH: u32 = 1200;
/// The largest picture accepted before resizing, each way (a 48-megapixel phone photo
/// is 8000 by 6000).
pub const MAX_SIDE: u32 = 10_000;
/// The most memory a decoder may ask for.
const MAX_ALLOC: u64 = 200 * 1024 * 1024;
/// The most frames an animated GIF may have.
const MAX_FRAMES: usize = 300;
/// The most pixels an animated GIF may decode to, over all its frames.
const MAX_ANIMATION_PIXELS: u64 = 50_000_000;
/// The largest upload, in bytes.
pub const MAX_UPLOAD: usize = 8 * 1024 * 1024;
/// Where images are served.
pub const MEDIA_PATH: &str = "/media/";

/// Why an upload was refused, in words for the person who chose the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaRefusal {
    #[error("Choose an image file to upload.")]
    Empty,
    #[error("That file is larger than {} MB. Save it smaller and try again.", MAX_UPLOAD / (1024 * 1024))]
    TooLarge,
    #[error(
        "SVG images are not accepted: they can carry scripts, and many mail programs do not show them. Save it as PNG and upload that."
    )]
    Svg,
    #[error("That file is not an image we take. Upload a JPEG, PNG, GIF or WebP image.")]
    NotAnImage,
    #[error(
        "That file is named as a {named} image but it is really a {actual} image. Save it again as {named}, or rename it to end in .{actual_extension}."
    )]
    Mislabelled {
        named: &'static str,
        actual: &'static str,
        actual_extension: &'static str,
    },
    #[error(
        "That picture is too large ({width} by {height} pixels); the most we take is {MAX_SIDE} pixels each way."
    )]
    TooManyPixels { width: u32, height: u32 },
    #[error(
        "That animation has too many frames or is too large; the most we take is {MAX_FRAMES} frames."
    )]
    TooLong,
    #[error(
        "That picture is too large to open. Save it smaller (at most {MAX_SIDE} pixels each way) and upload that."
    )]
    TooDemanding,
    #[error(
        "That image could not be read: the file is damaged or incomplete. Save it again and upload that."
    )]
    Damaged,
}

/// An image ready to keep: re-encoded, upright, without metadata.
#[derive(Clone, Debug)]
pub struct ProcessedImage {
    /// SHA-256 of `bytes`, in hex.
    pub hash: String,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// The formats we keep and serve. WebP comes in but does not go out: Outlook for Windows
/// cannot show it, so it is kept as JPEG (or PNG, if it is transparent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
        }
    }

    pub fn from_extension(extension: &str) -> Option<Self> {
        [Format::Jpeg, Format::Png, Format::Gif]
            .into_iter()
            .find(|f| f.extension() == extension)
    }
}

impl ProcessedImage {
    /// The path it is served at.
    pub fn path(&self) -> String {
        media_path(&self.hash, self.width, self.height, self.format)
    }
}

pub fn media_path(hash: &str, width: u32, height: u32, format: Format) -> String {
    format!("{MEDIA_PATH}{hash}-{width}x{height}.{}", format.extension())
}

/// A served image's name, `{hash}-{width}x{height}.{ext}`, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaName {
    pub hash: String,
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

impl MediaName {
    pub fn parse(name: &str) -> Option<Self> {
        let (stem, extension) = name.rsplit_once('.')?;
        let (hash, size) = stem.split_once('-')?;
        let (width, height) = size.split_once('x')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex || !digits(width) || !digits(height) {
            return None;
        }
        Some(Self {
            hash: hash.to_owned(),
            width: width.parse().ok()?,
            height: height.parse().ok()?,
            format: Format::from_extension(extension)?,
        })
    }

    /// The name of one of our images from its address (`/media/...` or a whole URL
    /// whose path is that), so that a mail can give its size.
    pub fn from_url(url: &str) -> Option<Self> {
        let path = match url.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/')?..],
            None => url,
        };
        Self::parse(path.strip_prefix(MEDIA_PATH)?)
    }
}

/// The format a file's name claims, if it names one of ours.
fn named_format(file_name: &str) -> Option<ImageFormat> {
    let extension = file_name.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" | "jfif" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        "gif" => Some(ImageFormat::Gif),
        "webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

fn format_words(format: ImageFormat) -> (&'static str, &'static str) {
    match format {
        ImageFormat::Jpeg => ("JPEG", "jpg"),
        ImageFormat::Png => ("PNG", "png"),
        ImageFormat::Gif => ("GIF", "gif"),
        _ => ("WebP", "webp"),
    }
}

fn looks_like_svg(bytes: &[u8], file_name: &str) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    file_name.to_ascii_lowercase().ends_with(".svg")
        || (head
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('<')
            && head.contains("<svg"))
}

/// What a decoder may allocate. The sides are checked by us, to say them in the refusal.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    limits
}

/// Turns an upload into an image we keep, or says why not. CPU-bound: call it off the
/// async threads.
pub fn process(file_name: &str, bytes: &[u8]) -> Result<ProcessedImage, MediaRefusal> {
    if bytes.is_empty() {
        return Err(MediaRefusal::Empty);
    }
    if bytes.len() > MAX_UPLOAD {
        return Err(MediaRefusal::TooLarge);
    }
    if looks_like_svg(bytes, file_name) {
        return Err(MediaRefusal::Svg);
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| {
            matches!(
                f,
                ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP
            )
        })
        .ok_or(MediaRefusal::NotAnImage)?;
    if let Some(named) = named_format(file_name).filter(|n| *n != format) {
        let (actual, actual_extension) = format_words(format);
        return Err(MediaRefusal::Mislabelled {
            named: format_words(named).0,
            actual,
            actual_extension,
        });
    }
    let (format, width, height, bytes) = if format == ImageFormat::Gif {
        gif(bytes)?
    } else {
        still(bytes, format)?
    };
    Ok(ProcessedImage {
        hash: crate::tokens::sha256_hex(&bytes),
        format,
        width,
        height,
        bytes,
    })
}

/// Images being decoded at once: each may hold `MAX_ALLOC` bytes.
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `process`, on a blocking thread, a few at a time.
pub async fn process_upload(
    file_name: String,
    bytes: Vec<u8>,
) -> anyhow::Result<Result<ProcessedImage, MediaRefusal>> {
    use anyhow::Context;
    let _permit = DECODING
        .acquire()
        .await
        .context("The image decoding permits are closed")?;
    tokio::task::spawn_blocking(move || process(&file_name, &bytes))
        .await
        .context("Processing an image failed")
}

fn refusal(err: image::ImageError) -> MediaRefusal {
    match err {
        image::ImageError::Limits(_) => MediaRefusal::TooDemanding,
        _ => MediaRefusal::Damaged,
    }
}

/// The size an image of `width` by `height` is made: at most `MAX_WIDTH` wide.
fn fitted(width: u32, height: u32) -> (u32, u32) {
    if width <= MAX_WIDTH {
        return (width, height);
    }
    let h = (u64::from(height) * u64::from(MAX_WIDTH)).div_ceil(u64::from(width));
    (MAX_WIDTH, (h as u32).max(1))
}

fn still(bytes: &[u8], format: ImageFormat) -> Result<(Format, u32, u32, Vec<u8>), MediaRefusal> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(MediaRefusal::TooManyPixels { width, height });
    }
    // Decoders do not all count what they allocate: check what the pixels will need.
    if decoder.total_bytes() > MAX_ALLOC {
        return Err(MediaRefusal::TooDemanding);
    }
    let orientation = decoder.orientation().map_err(refusal)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(refusal)?;
    picture.apply_orientation(orientation);
    let (w, h) = fitted(picture.width(), picture.height());
    if (w, h) != (picture.width(), picture.height()) {
        picture = picture.resize_exact(w, h, FilterType::Lanczos3);
    }
    let transparent =
        picture.color().has_alpha() && picture.to_rgba8().pixels().any(|p| p.0[3] < 255);
    let keep = match format {
        ImageFormat::Png => Format::Png,
        ImageFormat::WebP if transparent => Format::Png,
        _ => Format::Jpeg,
    };
    let mut out = Vec::new();
    let written = match keep {
        Format::Png => picture.write_with_encoder(PngEncoder::new(&mut out)),
        _ => DynamicImage::ImageRgb8(picture.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 85)),
    };
    written.map_err(|_| MediaRefusal::Damaged)?;
    Ok((keep, w, h, out))
}

fn gif(bytes: &[u8]) -> Result<(Format, u32, u32, Vec<u8>), MediaRefusal> {
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(MediaRefusal::TooManyPixels { width, height });
    }
    decoder.set_limits(limits()).map_err(refusal)?;
    let (w, h) = fitted(width, height);
    let canvas = u64::from(width) * u64::from(height);
    let mut frames = Vec::new();
    for frame in decoder.into_frames() {
        let frame = frame.map_err(refusal)?;
        if frames.len() == MAX_FRAMES || canvas * (frames.len() as u64 + 1) > MAX_ANIMATION_PIXELS {
            return Err(MediaRefusal::TooLong);
        }
        let delay = frame.delay();
        let mut buffer = frame.into_buffer();
        if (w, h) != (width, height) {
            buffer = image::imageops::resize(&buffer, w, h, FilterType::Triangle);
        }
        frames.push(image::Frame::from_parts(buffer, 0, 0, delay));
    }
    if frames.is_empty() {
        return Err(MediaRefusal::Damaged);
    }
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        if frames.len() > 1 {
            encoder
                .set_repeat(Repeat::Infinite)
                .map_err(|_| MediaRefusal::Damaged)?;
        }
        encoder
            .encode_frames(frames)
            .map_err(|_| MediaRefusal::Damaged)?;
    }
    if out.len() > MAX_UPLOAD {
        return Err(MediaRefusal::TooLong);
    }
    Ok((Format::Gif, w, h, out))
}

#[cfg(test)]
mod tests;
