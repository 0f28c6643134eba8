import Foundation

/// The size a JPEG or PNG header announces, read without decoding anything, so that empty and
/// oversized images are refused before a decoder allocates their pixels.
enum ImageHeader {
    static func dimensions(_ data: Data, _ format: ImageDecoder.Format) throws -> (width: Int, height: Int) {
        let bytes = [UInt8](data.prefix(format == .png ? 24 : data.count))
        switch format {
        case .png: return try png(bytes)
        case .jpeg: return try jpeg(bytes)
        }
    }

    private static func bigEndian(_ b: [UInt8], _ at: Int, _ count: Int) -> Int {
        (at..<(at + count)).reduce(0) { $0 << 8 | Int(b[$1]) }
    }

    /// The signature (8 bytes), then the IHDR chunk: length (4), "IHDR", width (4), height (4).
    private static func png(_ b: [UInt8]) throws -> (width: Int, height: Int) {
        guard b.count >= 24, b[12...15].elementsEqual("IHDR".utf8) else {
            throw VisionError(.corrupt, "PNG has no IHDR header chunk (truncated or corrupt file)")
        }
        return (bigEndian(b, 16, 4), bigEndian(b, 20, 4))
    }

    /// Walks the marker segments to the first start-of-frame (SOF0–SOF15 except DHT, JPG, DAC):
    /// length (2), precision (1), height (2), width (2).
    private static func jpeg(_ b: [UInt8]) throws -> (width: Int, height: Int) {
        var at = 2
        while at + 4 <= b.count {
            guard b[at] == 0xFF else { break }
            let marker = b[at + 1]
            if marker == 0xFF { at += 1; continue } // fill byte
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { at += 2; continue } // no length
            let length = bigEndian(b, at + 2, 2)
            if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard at + 9 <= b.count else { break }
                return (bigEndian(b, at + 7, 2), bigEndian(b, at + 5, 2))
            }
            if marker == 0xDA || marker == 0xD9 { break } // scan data or end before any frame header
            at += 2 + length
        }
        throw VisionError(.corrupt, "JPEG has no frame header before its image data (truncated or corrupt file)")
    }
}
