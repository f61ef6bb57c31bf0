use image::{ImageBuffer, Rgb, Rgba, RgbaImage};

use super::*;

fn encoded(picture: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn photo(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }))
}

/// A little-endian TIFF block as EXIF carries it: orientation 6 (turn right) and a GPS
/// position (51° 52' 12.34" N, Cheltenham).
fn exif_with_gps() -> Vec<u8> {
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    let entry = |tag: u16, kind: u16, count: u32, value: u32| {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend(kind.to_le_bytes());
        e.extend(count.to_le_bytes());
        e.extend(value.to_le_bytes());
        e
    };
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(entry(0x0112, 3, 1, 6));
    tiff.extend(entry(0x8825, 4, 1, 38));
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(entry(0x0002, 5, 3, 56));
    tiff.extend(0u32.to_le_bytes());
    for (n, d) in [(51u32, 1u32), (52, 1), (1234, 100)] {
        tiff.extend(n.to_le_bytes());
        tiff.extend(d.to_le_bytes());
    }
    let mut app1 = b"\xff\xe1".to_vec();
    app1.extend(((tiff.len() + 8) as u16).to_be_bytes());
    app1.extend(b"Exif\0\0");
    app1.extend(tiff);
    app1
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG of a few hundred bytes that claims `width` by `height` pixels of 16-bit RGBA.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend(data);
        c.extend(&body);
        c.extend(crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    // A zlib stream of a stored empty block: what follows never gets read.
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn a_big_photo_is_made_1200_wide_and_kept_as_jpeg() {
    let upload = encoded(photo(2400, 1601), ImageFormat::Jpeg);
    let image = process("Stroud hub.JPG", &upload).unwrap();
    assert_eq!(
        (image.format, image.width, image.height),
        (Format::Jpeg, 1200, 801)
    );
    assert!(image.bytes.starts_with(&[0xff, 0xd8]));
    assert_eq!(image.hash, crate::tokens::sha256_hex(&image.bytes));
    assert_eq!(image.path(), format!("/media/{}-1200x801.jpg", image.hash));
    let small = process("small.jpeg", &encoded(photo(300, 200), ImageFormat::Jpeg)).unwrap();
    assert_eq!((small.width, small.height), (300, 200));
}

#[test]
fn exif_and_gps_are_dropped_and_the_photo_is_turned_upright() {
    let plain = encoded(photo(300, 100), ImageFormat::Jpeg);
    let mut upload = plain[..2].to_vec();
    upload.extend(exif_with_gps());
    upload.extend(&plain[2..]);
    let image = process("phone.jpg", &upload).unwrap();
    // Orientation 6: the camera was turned, so the picture is 100 wide and 300 high.
    assert_eq!((image.width, image.height), (100, 300));
    let has = |needle: &[u8]| image.bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!has(b"Exif"), "the EXIF block is gone");
    assert!(!has(&1234u32.to_le_bytes()), "the GPS position is gone");
    assert!(upload.windows(4).any(|w| w == b"Exif"), "the upload had it");
}

#[test]
fn a_file_is_known_by_its_bytes_not_its_name() {
    let png = encoded(photo(40, 30), ImageFormat::Png);
    assert_eq!(
        process("photo.jpg", &png).unwrap_err(),
        MediaRefusal::Mislabelled {
            named: "JPEG",
            actual: "PNG",
            actual_extension: "png"
        }
    );
    let kept = process("photo", &png).unwrap();
    assert_eq!(kept.format, Format::Png);
    assert_eq!(
        process("notes.png", b"Not a picture at all").unwrap_err(),
        MediaRefusal::NotAnImage
    );
    assert_eq!(process("x.png", b"").unwrap_err(), MediaRefusal::Empty);
}

#[test]
fn svg_is_refused_whatever_it_is_called() {
    let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    assert_eq!(process("logo.png", svg).unwrap_err(), MediaRefusal::Svg);
    assert_eq!(process("logo.svg", svg).unwrap_err(), MediaRefusal::Svg);
}

#[test]
fn a_png_bomb_is_refused_before_it_is_decoded() {
    let bomb = png_claiming(50_000, 50_000);
    assert!(bomb.len() < 100);
    assert_eq!(
        process("bomb.png", &bomb).unwrap_err(),
        MediaRefusal::TooManyPixels {
            width: 50_000,
            height: 50_000
        }
    );
    // Within the sides, but 10,000 by 9,000 of 16-bit RGBA is 720 MB.
    assert_eq!(
        process("bomb.png", &png_claiming(10_000, 9_000)).unwrap_err(),
        MediaRefusal::TooDemanding
    );
    assert_eq!(
        process("big.png", &vec![0u8; MAX_UPLOAD + 1]).unwrap_err(),
        MediaRefusal::TooLarge
    );
}

#[test]
fn a_damaged_file_is_refused() {
    let jpeg = encoded(photo(400, 300), ImageFormat::Jpeg);
    assert_eq!(
        process("cut.jpg", &jpeg[..200]).unwrap_err(),
        MediaRefusal::Damaged
    );
}

#[test]
fn webp_is_kept_as_jpeg_or_as_png_when_transparent() {
    let opaque = encoded(photo(50, 40), ImageFormat::WebP);
    assert_eq!(process("a.webp", &opaque).unwrap().format, Format::Jpeg);
    let clear: RgbaImage = ImageBuffer::from_fn(50, 40, |x, _| Rgba([0, 0, 0, (x * 5) as u8]));
    let transparent = encoded(DynamicImage::ImageRgba8(clear), ImageFormat::WebP);
    assert_eq!(process("b.webp", &transparent).unwrap().format, Format::Png);
}

#[test]
fn an_animated_gif_keeps_its_frames() {
    let frame =
        |shade: u8| image::Frame::new(ImageBuffer::from_pixel(1600, 100, Rgba([shade, 0, 0, 255])));
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        encoder.encode_frames([frame(10), frame(200)]).unwrap();
    }
    let image = process("wave.gif", &gif).unwrap();
    assert_eq!(
        (image.format, image.width, image.height),
        (Format::Gif, 1200, 75)
    );
    let frames = GifDecoder::new(Cursor::new(&image.bytes))
        .unwrap()
        .into_frames()
        .count();
    assert_eq!(frames, 2);
}

#[test]
fn names_are_read_back_from_addresses() {
    let hash = "ab".repeat(32);
    let name =
        MediaName::from_url(&format!("https://news.example/media/{hash}-600x400.png")).unwrap();
    assert_eq!(
        (name.width, name.height, name.format),
        (600, 400, Format::Png)
    );
    assert_eq!(
        MediaName::from_url(&format!("/media/{hash}-600x400.jpg"))
            .unwrap()
            .hash,
        hash
    );
    for bad in [
        format!("/media/{hash}-600x400.svg"),
        format!("/media/{hash}-600.png"),
        format!("/media/{}-600x400.png", "AB".repeat(32)),
        format!("/elsewhere/{hash}-600x400.png"),
        format!("/media/{hash}-600x400000000.png"),
    ] {
        assert_eq!(MediaName::from_url(&bad), None, "{bad}");
    }
}
