import CStb
import Foundation

/// Decodes JPEG and PNG bytes into RGB exactly as transformers' image processors see
/// `ImageOps.exif_transpose(Image.open(f))` — the image `load_image` gives them, with its EXIF
/// orientation applied:
/// - JPEG through libjpeg-turbo (`JPEGDecoder`), the decoder Pillow bundles, bit for bit;
/// - PNG through stb_image, whose PNG decode is exact (its JPEG decode is not: its IDCT and upsampling
///   differ from libjpeg-turbo's by a level here and there, so stb is kept for PNG alone);
/// - any alpha (an alpha channel, a palette's or a colour key's transparency) composited onto white with
///   PIL's integer `alpha_composite`, as the processors' `convert_to_rgb` does (`load_image`'s own
///   `convert("RGB")` would drop it instead; images without alpha are the same either way); 16-bit
///   channels keep their high byte, except 16-bit grey, which PIL opens as "I;16" and clamps to 255;
/// - then the EXIF orientation (JPEG's APP1, PNG's eXIf or text chunks, or XMP's) turns the image upright.
public enum ImageDecoder {
    /// Default pixel limit: 64 megapixels (a 8192×8192 image), far above what any vision tower uses.
    public static let defaultMaxPixels = 64 << 20

    /// Decodes `data`. The header is read first: an image announcing no pixels or more than
    /// `maxPixels` pixels is rejected before any pixel is decoded.
    public static func decode(_ data: Data, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        guard let format = Format(data) else {
            let head = data.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw VisionError(.notAnImage, data.isEmpty ? "no image bytes (empty input)" : "not a JPEG or PNG image (first bytes: \(head))")
        }
        guard data.count <= Int(Int32.max) else {
            throw VisionError(.tooLarge, "\(format) of \(data.count) bytes is larger than the 2 GiB this decoder reads")
        }
        let (width, height) = try ImageHeader.dimensions(data, format)
        guard width > 0, height > 0 else {
            throw VisionError(.zeroSized, "\(format) header announces a \(width)×\(height) image")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else {
            throw VisionError(.tooLarge, "\(format) header announces \(width)×\(height) pixels, over the limit of \(maxPixels)")
        }
        let bytes = [UInt8](data)
        let stored = try bytes.withUnsafeBytes { raw in
            if format == .jpeg { return try JPEGDecoder.decode(raw) }
            let bytes = raw.bindMemory(to: UInt8.self).baseAddress!, length = Int32(raw.count)
            // stb's own header check (and its 2^30-byte cap) before any pixel is decoded.
            var channels: Int32 = 0, stbWidth: Int32 = 0, stbHeight: Int32 = 0
            guard stbi_info_from_memory(bytes, length, &stbWidth, &stbHeight, &channels) == 1 else {
                throw failure(format, while: "reading the header")
            }
            if channels == 1, stbi_is_16_bit_from_memory(bytes, length) == 1 {
                return try decodeGrey16(bytes, length, format)
            }
            return try decodeComposited(bytes, length, format)
        }
        return ImageMetadata.orientation(bytes, format).apply(to: stored)
    }

    /// 16-bit grey: PIL's "I;16" → "RGB" conversion clamps each value to 255 (it does not scale);
    /// a tRNS colour key makes its pixels transparent, hence white.
    private static func decodeGrey16(_ bytes: UnsafePointer<UInt8>, _ length: Int32, _ format: Format) throws -> RGBImage {
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        guard let greyAlpha = stbi_load_16_from_memory(bytes, length, &width, &height, &channels, 2) else {
            throw failure(format, while: "decoding")
        }
        defer { stbi_image_free(greyAlpha) }
        let count = Int(width) * Int(height)
        var pixels = [UInt8](repeating: 0, count: count * 3)
        for i in 0..<count {
            let value = greyAlpha[2 * i + 1] == 0 ? 255 : UInt8(min(greyAlpha[2 * i], 255))
            pixels[3 * i] = value; pixels[3 * i + 1] = value; pixels[3 * i + 2] = value
        }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// Everything else is decoded as RGBA (stb applies palettes, tRNS keys and 16→8-bit high bytes)
    /// and composited onto white; opaque pixels come through unchanged.
    private static func decodeComposited(_ bytes: UnsafePointer<UInt8>, _ length: Int32, _ format: Format) throws -> RGBImage {
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        guard let rgba = stbi_load_from_memory(bytes, length, &width, &height, &channels, 4) else {
            throw failure(format, while: "decoding")
        }
        defer { stbi_image_free(rgba) }
        let count = Int(width) * Int(height)
        var pixels = [UInt8](repeating: 0, count: count * 3)
        pixels.withUnsafeMutableBufferPointer { out in
            for i in 0..<count {
                let alpha = rgba[4 * i + 3]
                for c in 0..<3 { out[3 * i + c] = compositeOnWhite(rgba[4 * i + c], alpha: alpha) }
            }
        }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// PIL's `alpha_composite(white, pixel)` for one channel, in its integer arithmetic
    /// (AlphaComposite.c with an opaque destination: 7 extra bits of precision, rounded /255).
    @inline(__always)
    static func compositeOnWhite(_ value: UInt8, alpha: UInt8) -> UInt8 {
        if alpha == 255 { return value }
        if alpha == 0 { return 255 }
        let a = UInt32(alpha), precision: UInt32 = 7
        let coefficient1 = a << precision, coefficient2 = (255 << precision) - coefficient1
        let mixed = UInt32(value) * coefficient1 + 255 * coefficient2 + (0x80 << precision)
        return UInt8(truncatingIfNeeded: (((mixed >> 8) + mixed) >> 8) >> precision)
    }

    private static func failure(_ format: Format, while step: String) -> VisionError {
        let reason = stbi_failure_reason().map { String(cString: $0) } ?? "unknown error"
        if reason == "too large" {
            return VisionError(.tooLarge, "\(format) \(step): larger than stb_image decodes (2^30 bytes of pixels)")
        }
        // stbi_info tries every format, so its reason is the last decoder's ("unknown image type").
        return VisionError(.corrupt, "\(format) \(step) failed: \(reason) (truncated or corrupt file)")
    }

    enum Format: CustomStringConvertible {
        case jpeg, png

        init?(_ data: Data) {
            if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
                self = .png
            } else if data.starts(with: [0xFF, 0xD8, 0xFF]) {
                self = .jpeg
            } else {
                return nil
            }
        }

        var description: String { self == .png ? "PNG" : "JPEG" }
    }
}
