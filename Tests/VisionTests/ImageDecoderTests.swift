import Foundation
import Testing

@testable import Vision

/// Decoding against Pillow's as transformers loads an image (`exif_transpose`, then `convert_to_rgb`):
/// every PNG and JPEG (baseline, progressive, 4:4:4, 4:2:2, 4:2:0, grey, CMYK, YCCK, corrupt scan
/// data, each EXIF orientation) bit for bit.
@Suite struct ImageDecoderTests {
    @Test func fixturesExist() throws {
        #expect(VisionFixture.images.count >= 50)
        let manifest = try #require(VisionFixture.imageManifest)
        #expect(manifest.pillow_version == "13.0.0" && manifest.libjpeg_turbo_version == "3.2.0")
    }

    @Test(arguments: VisionFixture.images)
    func decodeMatchesPIL(image: VisionFixture.Image) throws {
        let decoded = try ImageDecoder.decode(VisionFixture.bytes("images/\(image.file)"))
        #expect(decoded.width == image.width && decoded.height == image.height)
        let expected = [UInt8](try VisionFixture.bytes("images/\(image.name).rgb"))
        try #require(decoded.pixels.count == expected.count)
        let differing = zip(decoded.pixels, expected).filter { $0 != $1 }.count
        #expect(differing == 0, "\(image.name): \(differing) of \(expected.count) values differ from Pillow's")
    }

    /// Each orientation turns the stored (upright: 32 wide, 48 tall) pixels as `exif_transpose` does.
    @Test func everyOrientationTurnsTheStoredPixels() throws {
        let stored = try ImageDecoder.decode(VisionFixture.bytes("images/jpeg-orientation-1.jpg"))
        #expect(stored.width == 32 && stored.height == 48)
        for value in 2...8 {
            let turned = try ImageDecoder.decode(VisionFixture.bytes("images/jpeg-orientation-\(value).jpg"))
            let orientation = try #require(ImageOrientation(rawValue: value))
            #expect(turned == orientation.apply(to: stored), "orientation \(value)")
            #expect(turned.width == (value >= 5 ? 48 : 32) && turned.height == (value >= 5 ? 32 : 48), "orientation \(value)")
        }
    }

    /// "Exif\0\0", a TIFF header, one IFD holding one Orientation entry, no next IFD.
    static func exifBlock(littleEndian little: Bool, type: UInt16, count: UInt32, value: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = Array("Exif\0\0".utf8)
        func append(_ v: UInt32, _ size: Int) {
            let big: [UInt8] = (0..<size).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) }
            bytes.append(contentsOf: little ? big.reversed() : big)
        }
        bytes.append(contentsOf: little ? [0x49, 0x49, 0x2A, 0] : [0x4D, 0x4D, 0, 0x2A])
        append(8, 4)
        append(1, 2)
        append(0x0112, 2)
        append(UInt32(type), 2)
        append(count, 4)
        bytes.append(contentsOf: value)
        append(0, 4)
        return bytes
    }

    @Test func exifOrientationEntries() {
        func read(_ little: Bool, type: UInt16, count: UInt32 = 1, _ value: [UInt8]) -> ImageOrientation? {
            ExifOrientation.read(Self.exifBlock(littleEndian: little, type: type, count: count, value: value))
        }
        #expect(read(true, type: 3, [6, 0, 0, 0]) == .rotatedLeft)
        #expect(read(false, type: 3, [0, 8, 0, 0]) == .rotatedRight)
        #expect(read(true, type: 4, [3, 0, 0, 0]) == .upsideDown)
        // Present but not one number in 2...8: the image stays as stored (and XMP is not consulted).
        #expect(read(true, type: 3, [9, 0, 0, 0]) == .upright)
        #expect(read(true, type: 3, count: 2, [6, 0, 6, 0]) == .upright)
        #expect(read(true, type: 2, [0x36, 0, 0, 0]) == .upright)
        // An unknown type is skipped, as is an IFD cut short; a block that is not TIFF has no orientation.
        #expect(read(true, type: 99, [6, 0, 0, 0]) == nil)
        #expect(ExifOrientation.read(Array(Self.exifBlock(littleEndian: true, type: 3, count: 1, value: [6, 0, 0, 0]).prefix(20))) == nil)
        #expect(ExifOrientation.read(Array("Exif\0\0GIF89a....".utf8)) == nil)
        #expect(ExifOrientation.xmp(Array(#"<rdf:Description tiff:Orientation="6"/>"#.utf8)) == .rotatedLeft)
        #expect(ExifOrientation.xmp(Array("<tiff:Orientation>3</tiff:Orientation>".utf8)) == .upsideDown)
        #expect(ExifOrientation.xmp(Array("<tiff:Orientation/>".utf8)) == nil)
    }

    @Test func compositeOnWhiteIsPILsForEveryPair() throws {
        // The grey-alpha-all fixture holds every (grey, alpha) pair; decodeMatchesPIL checks it
        // through the decoder, this pins the arithmetic on its own edges.
        #expect(ImageDecoder.compositeOnWhite(0, alpha: 0) == 255)
        #expect(ImageDecoder.compositeOnWhite(17, alpha: 255) == 17)
        #expect(ImageDecoder.compositeOnWhite(0, alpha: 128) == 127)
    }

    @Test func emptyAndForeignBytesAreNotImages() {
        for data in [Data(), Data("hello, world".utf8), Data([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0])] {
            #expect { try ImageDecoder.decode(data) } throws: { ($0 as? VisionError)?.code == .notAnImage }
        }
    }

    @Test(arguments: ["images/rgb-landscape.png", "images/jpeg-420.jpg", "images/jpeg-progressive.jpg", "images/jpeg-cmyk.jpg"])
    func truncatedFilesAreRejected(path: String) throws {
        let whole = try VisionFixture.bytes(path)
        for fraction in [0.3, 0.7, 0.95] {
            let cut = whole.prefix(Int(Double(whole.count) * fraction))
            #expect(throws: VisionError.self, "\(path) cut to \(cut.count) bytes") { try ImageDecoder.decode(cut) }
        }
        if path.hasSuffix(".jpg") { // inside the scan data: libjpeg's "premature end", named as truncation
            #expect { try ImageDecoder.decode(whole.prefix(whole.count - 10)) } throws: { error in
                guard let error = error as? VisionError else { return false }
                return error.code == .corrupt && error.message.contains("truncated")
            }
        }
    }

    /// Pillow cannot open a JPEG of 2 components; neither can libjpeg-turbo: a clear error. (Garbage in
    /// the scan data is only a warning in both: jpeg-corrupt-scan decodes to Pillow's pixels above.)
    @Test func twoComponentJPEGIsAnError() throws {
        var jpeg = [UInt8](try VisionFixture.bytes("images/jpeg-q75-420.jpg"))
        let frame = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg[frame + 9] = 2 // components in the frame header
        #expect { try ImageDecoder.decode(Data(jpeg)) } throws: { error in
            guard let error = error as? VisionError else { return false }
            return error.code == .corrupt && error.message.hasPrefix("JPEG")
        }
    }

    @Test func headerOnlyFilesAreCorrupt() throws {
        let whole = try VisionFixture.bytes("images/rgb-landscape.png")
        #expect { try ImageDecoder.decode(whole.prefix(40)) } throws: { ($0 as? VisionError)?.code == .corrupt }
    }

    @Test(arguments: ["bad/zero-width.png", "bad/zero-height.jpg"])
    func zeroSizedImagesAreRejected(path: String) throws {
        let data = try VisionFixture.bytes(path)
        #expect { try ImageDecoder.decode(data) } throws: { ($0 as? VisionError)?.code == .zeroSized }
    }

    @Test func pixelLimitIsCheckedBeforeDecoding() throws {
        // 10000×10000 announced, one pixel of data: refused from the header alone; allowed that
        // many pixels, stb finds the data missing.
        let huge = try VisionFixture.bytes("bad/huge-header.png")
        #expect { try ImageDecoder.decode(huge) } throws: { error in
            guard let error = error as? VisionError else { return false }
            return error.code == .tooLarge && error.message.contains("10000×10000")
        }
        #expect { try ImageDecoder.decode(huge, maxPixels: 100_000_000) } throws: { ($0 as? VisionError)?.code == .corrupt }
        var absurd = huge // IHDR width and height (bytes 16...23) at 2^32 - 1: no overflow, a clear error
        absurd.replaceSubrange(16..<24, with: [UInt8](repeating: 0xFF, count: 8))
        #expect { try ImageDecoder.decode(absurd, maxPixels: .max) } throws: { ($0 as? VisionError)?.code == .tooLarge }
        let photo = try VisionFixture.bytes("images/rgb-landscape.png") // 97×61 = 5917 pixels
        #expect { try ImageDecoder.decode(photo, maxPixels: 5916) } throws: { ($0 as? VisionError)?.code == .tooLarge }
        #expect(try ImageDecoder.decode(photo, maxPixels: 5917).width == 97)
        // A JPEG announcing 65000×65000 in its frame header: refused before libjpeg-turbo allocates anything.
        var jpeg = [UInt8](try VisionFixture.bytes("images/jpeg-q75-420.jpg"))
        let frame = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((frame + 5)..<(frame + 9), with: [0xFD, 0xE8, 0xFD, 0xE8])
        #expect { try ImageDecoder.decode(Data(jpeg)) } throws: { error in
            guard let error = error as? VisionError else { return false }
            return error.code == .tooLarge && error.message.contains("65000×65000")
        }
    }
}
