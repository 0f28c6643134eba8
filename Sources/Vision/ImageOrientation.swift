/// How an image's stored pixels must be turned to stand upright: the EXIF Orientation tag (0x0112),
/// applied as Pillow's `ImageOps.exif_transpose` does (transformers' `load_image` calls it before
/// converting to RGB). Values other than 2...8 leave the image as stored.
public enum ImageOrientation: Int, Sendable {
    case upright = 1
    case mirrored = 2 // FLIP_LEFT_RIGHT
    case upsideDown = 3 // ROTATE_180
    case upsideDownMirrored = 4 // FLIP_TOP_BOTTOM
    case transposed = 5 // TRANSPOSE: the main diagonal swapped
    case rotatedLeft = 6 // ROTATE_270: turned 90° clockwise to stand upright
    case transversed = 7 // TRANSVERSE: the anti-diagonal swapped
    case rotatedRight = 8 // ROTATE_90: turned 90° counter-clockwise to stand upright

    /// The image turned upright: pixel (x, y) of the result comes from `source(x, y)` of `image`.
    public func apply(to image: RGBImage) -> RGBImage {
        if self == .upright { return image }
        let w = image.width, h = image.height
        let swapsSides = rawValue >= 5
        let outWidth = swapsSides ? h : w, outHeight = swapsSides ? w : h
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { from in
            pixels.withUnsafeMutableBufferPointer { to in
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        let (sx, sy): (Int, Int)
                        switch self {
                        case .upright: (sx, sy) = (x, y)
                        case .mirrored: (sx, sy) = (w - 1 - x, y)
                        case .upsideDown: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case .upsideDownMirrored: (sx, sy) = (x, h - 1 - y)
                        case .transposed: (sx, sy) = (y, x)
                        case .rotatedLeft: (sx, sy) = (y, h - 1 - x)
                        case .transversed: (sx, sy) = (w - 1 - y, h - 1 - x)
                        case .rotatedRight: (sx, sy) = (w - 1 - y, x)
                        }
                        let source = 3 * (sy * w + sx), target = 3 * (y * outWidth + x)
                        to[target] = from[source]
                        to[target + 1] = from[source + 1]
                        to[target + 2] = from[source + 2]
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: pixels)
    }
}

/// The orientation tag inside an EXIF block (a TIFF header and its first IFD), read as Pillow's `Exif`
/// reads it: the first entry of tag 0x0112 with a known type and complete data counts, and only a single
/// numeric value equal to 2...8 turns the image. A block Pillow cannot parse is read as carrying no tag
/// (Pillow raises there; refusing a photo over unreadable metadata helps no one).
enum ExifOrientation {
    /// `nil` when the block has no orientation entry (so XMP's may apply); `.upright` when it has one
    /// that turns nothing.
    static func read(_ block: [UInt8]) -> ImageOrientation? {
        var at = 0
        for _ in 0..<2 where block.count >= at + 6 && block[at..<(at + 6)].elementsEqual("Exif\0\0".utf8) { at += 6 }
        let tiff = Array(block[at...])
        guard tiff.count >= 8 else { return nil }
        let little: Bool
        switch (tiff[0], tiff[1], tiff[2], tiff[3]) {
        case (0x49, 0x49, 0x2A, 0x00): little = true // "II*\0"
        case (0x4D, 0x4D, 0x00, 0x2A): little = false // "MM\0*"
        default: return nil
        }
        func unsigned(_ offset: Int, _ size: Int) -> UInt64? {
            guard offset >= 0, offset + size <= tiff.count else { return nil }
            let bytes = tiff[offset..<(offset + size)]
            return (little ? Array(bytes.reversed()) : Array(bytes)).reduce(0) { $0 << 8 | UInt64($1) }
        }
        guard let ifdOffset = unsigned(4, 4), case let ifd = Int(ifdOffset), let entries = unsigned(ifd, 2) else { return nil }
        for entry in 0..<Int(entries) {
            let base = ifd + 2 + 12 * entry
            // An IFD cut short keeps the entries read so far, as Pillow's does.
            guard let tag = unsigned(base, 2), let type = unsigned(base + 2, 2), let count = unsigned(base + 4, 4) else {
                return nil
            }
            guard tag == 0x0112, let unit = unitSizes[Int(type)] else { continue }
            let size = Int(count) * unit
            let dataOffset = size > 4 ? unsigned(base + 8, 4).map { Int($0) } ?? -1 : base + 8
            guard size > 0, dataOffset >= 0, dataOffset + size <= tiff.count else { continue }
            guard count == 1, let value = number(type: Int(type), at: dataOffset, unsigned) else { return .upright }
            return value.rounded() == value && (2...8).contains(value) ? ImageOrientation(rawValue: Int(value)) : .upright
        }
        return nil
    }

    /// Bytes per value of each TIFF type Pillow reads (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE,
    /// UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD, LONG8, SLONG8, IFD8).
    private static let unitSizes = [1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8]

    /// One value as the number Python compares with the orientation keys (text and raw bytes: none).
    private static func number(type: Int, at offset: Int, _ read: (Int, Int) -> UInt64?) -> Double? {
        func signed(_ size: Int) -> Double? {
            read(offset, size).map { Double(Int64(bitPattern: $0 << (64 - 8 * UInt64(size))) >> (64 - 8 * Int64(size))) }
        }
        switch type {
        case 1: return read(offset, 1).map { Double($0) }
        case 3: return read(offset, 2).map { Double($0) }
        case 4, 13: return read(offset, 4).map { Double($0) }
        case 16, 18: return read(offset, 8).map { Double($0) }
        case 6: return signed(1)
        case 8: return signed(2)
        case 9: return signed(4)
        case 17: return signed(8)
        case 5:
            guard let n = read(offset, 4), let d = read(offset + 4, 4), d != 0 else { return nil }
            return Double(n) / Double(d)
        case 10:
            guard let n = read(offset, 4), let d = read(offset + 4, 4), d != 0 else { return nil }
            return Double(Int32(truncatingIfNeeded: n)) / Double(Int32(truncatingIfNeeded: d))
        case 11: return read(offset, 4).map { Double(Float(bitPattern: UInt32($0))) }
        case 12: return read(offset, 8).map { Double(bitPattern: $0) }
        default: return nil
        }
    }

    /// XMP's orientation, as Pillow finds it when EXIF has none: the first `tiff:Orientation="d` or
    /// `tiff:Orientation>d`.
    static func xmp(_ packet: [UInt8]) -> ImageOrientation? {
        let key = Array("tiff:Orientation".utf8)
        var at = 0
        while at + key.count + 1 < packet.count {
            defer { at += 1 }
            guard packet[at..<(at + key.count)].elementsEqual(key) else { continue }
            var value = at + key.count
            if packet[value] == UInt8(ascii: "=") {
                guard value + 2 < packet.count, packet[value + 1] == UInt8(ascii: "\"") else { continue }
                value += 2
            } else if packet[value] == UInt8(ascii: ">") {
                value += 1
            } else {
                continue
            }
            guard value < packet.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(packet[value]) else { continue }
            return ImageOrientation(rawValue: Int(packet[value] - UInt8(ascii: "0"))) ?? .upright
        }
        return nil
    }
}
