import CStb

/// Where an image file keeps its orientation, found as Pillow finds it for `getexif()`: EXIF first,
/// then, when EXIF has no orientation entry, XMP's `tiff:Orientation`.
enum ImageMetadata {
    static func orientation(_ bytes: [UInt8], _ format: ImageDecoder.Format) -> ImageOrientation {
        let found = format == .jpeg ? jpeg(bytes) : png(bytes)
        return found.exif.flatMap(ExifOrientation.read) ?? found.xmp.flatMap(ExifOrientation.xmp) ?? .upright
    }

    /// JPEG: the APP1 segments before the first scan. Pillow keeps the first "Exif\0\0" segment and
    /// appends the payload of any later one; of XMP segments, the last one's packet.
    private static func jpeg(_ b: [UInt8]) -> (exif: [UInt8]?, xmp: [UInt8]?) {
        var exif: [UInt8]?, xmp: [UInt8]?
        var at = 2
        while at + 4 <= b.count, b[at] == 0xFF {
            let marker = b[at + 1]
            if marker == 0xFF { at += 1; continue }
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { at += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }
            let end = min(at + 2 + (Int(b[at + 2]) << 8 | Int(b[at + 3])), b.count)
            let segment = Array(b[min(at + 4, end)..<end])
            if marker == 0xE1 {
                if segment.starts(with: "Exif\0\0".utf8) {
                    exif = exif.map { $0 + segment.dropFirst(6) } ?? segment
                } else if segment.starts(with: "http://ns.adobe.com/xap/1.0/\0".utf8) {
                    xmp = Array(segment.dropFirst(29))
                }
            }
            at = end
        }
        return (exif, xmp)
    }

    /// PNG: every chunk to IEND (Pillow reads those after the image data too, when it loads). The EXIF
    /// block is the last eXIf chunk or tEXt "exif"; failing that, the hex dump of a "Raw profile type
    /// exif" text (ImageMagick's form). XMP is the text under "XML:com.adobe.xmp".
    private static func png(_ b: [UInt8]) -> (exif: [UInt8]?, xmp: [UInt8]?) {
        var exif: [UInt8]?, rawProfile: [UInt8]?, xmp: [UInt8]?
        var at = 8
        while at + 8 <= b.count {
            let length = b[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) }
            let type = String(decoding: b[(at + 4)..<(at + 8)], as: UTF8.self)
            let end = min(at + 8 + length, b.count)
            let data = Array(b[(at + 8)..<end])
            switch type {
            case "eXIf": exif = data
            case "tEXt", "zTXt", "iTXt":
                if let (key, text) = textChunk(type, data) {
                    if key == "exif" && type == "tEXt" { exif = text }
                    if key == "Raw profile type exif" { rawProfile = text }
                    if key == "XML:com.adobe.xmp" { xmp = text }
                }
            case "IEND": return (exif ?? rawProfile.flatMap(hexProfile), xmp)
            default: break
            }
            at = end + 4 // CRC
        }
        return (exif ?? rawProfile.flatMap(hexProfile), xmp)
    }

    /// A text chunk's key and text; compressed text is inflated (at most 1 MiB, Pillow's limit too).
    private static func textChunk(_ type: String, _ data: [UInt8]) -> (String, [UInt8])? {
        guard let nul = data.firstIndex(of: 0) else { return nil }
        let key = String(decoding: data[..<nul], as: UTF8.self)
        var rest = Array(data[(nul + 1)...])
        switch type {
        case "zTXt":
            guard rest.first == 0 else { return nil }
            return inflate(Array(rest.dropFirst())).map { (key, $0) }
        case "iTXt":
            guard rest.count >= 2 else { return nil }
            let compressed = rest[0] != 0, method = rest[1]
            rest = Array(rest.dropFirst(2))
            // language tag, then translated keyword, each ended by a NUL
            guard let language = rest.firstIndex(of: 0), let translated = rest[(language + 1)...].firstIndex(of: 0) else { return nil }
            let text = Array(rest[(translated + 1)...])
            if !compressed { return (key, text) }
            return method == 0 ? inflate(text).map { (key, $0) } : nil
        default:
            return (key, rest)
        }
    }

    private static func inflate(_ data: [UInt8]) -> [UInt8]? {
        var length: Int32 = 0
        let inflated = data.withUnsafeBytes { raw in
            stbi_zlib_decode_malloc(raw.bindMemory(to: CChar.self).baseAddress, Int32(raw.count), &length)
        }
        guard let inflated else { return nil }
        defer { stbi_image_free(inflated) }
        guard length <= 1 << 20 else { return nil }
        return Array(UnsafeRawBufferPointer(start: inflated, count: Int(length)))
    }

    /// "\nexif\n<length>\n<hex lines>": the lines from the fourth on, as bytes (Python's `bytes.fromhex`,
    /// which skips whitespace).
    private static func hexProfile(_ text: [UInt8]) -> [UInt8]? {
        let lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count > 3 else { return nil }
        var bytes: [UInt8] = [], high: UInt8?
        for character in lines[3...].joined() where !" \t\r\u{0B}\u{0C}".utf8.contains(character) {
            guard let digit = hexDigit(character) else { return nil }
            if let h = high {
                bytes.append(h << 4 | digit)
                high = nil
            } else {
                high = digit
            }
        }
        return high == nil ? bytes : nil
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
