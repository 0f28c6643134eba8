import Foundation
import Testing

@testable import Vision

/// stb_image decoding against PIL's decode as transformers converts it to RGB.
@Suite struct ImageDecoderTests {
    @Test func fixturesExist() {
        #expect(VisionFixture.images.count >= 15)
    }

    @Test(arguments: VisionFixture.images)
    func decodeMatchesPIL(image: VisionFixture.Image) throws {
        let decoded = try ImageDecoder.decode(VisionFixture.bytes("images/\(image.file)"))
        #expect(decoded.width == image.width && decoded.height == image.height)
        let expected = [UInt8](try VisionFixture.bytes("images/\(image.name).rgb"))
        try #require(decoded.pixels.count == expected.count)
        let differences = zip(decoded.pixels, expected).map { abs(Int($0) - Int($1)) }
        if image.exact {
            #expect(differences.max() == 0, "\(image.name): \(differences.filter { $0 > 0 }.count) values differ from PIL")
        } else {
            // JPEG: stb's IDCT and YCbCr conversion are not libjpeg-turbo's.
            let within = differences.filter { $0 <= 2 }.count
            #expect(
                Double(within) >= 0.999 * Double(differences.count),
                "\(image.name): only \(within)/\(differences.count) within 2 levels, worst \(differences.max()!)")
        }
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

    @Test(arguments: ["images/rgb-landscape.png", "images/jpeg-420.jpg", "images/jpeg-progressive.jpg"])
    func truncatedFilesAreRejected(path: String) throws {
        let whole = try VisionFixture.bytes(path)
        for fraction in [0.3, 0.7, 0.95] {
            let cut = whole.prefix(Int(Double(whole.count) * fraction))
            #expect(throws: VisionError.self, "\(path) cut to \(cut.count) bytes") { try ImageDecoder.decode(cut) }
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
    }
}
