import CTurboJPEG

/// JPEG decoding with libjpeg-turbo's TurboJPEG API, to the pixels Pillow's `Image.open(f).convert("RGB")`
/// gives. Pillow's wheels bundle their own libjpeg-turbo (Pillow 13.0.0: 3.2.0) and decode with the
/// library's defaults — accurate integer IDCT, fancy upsampling — as TurboJPEG does; Debian 12's
/// libturbojpeg 2.1.5 gives the same bytes on every baseline, progressive, subsampled (4:4:4, 4:2:2,
/// 4:2:0), grey, CMYK and YCCK file tried (the fixtures of scripts/fixtures/make_vision_fixtures.py, and
/// the sweep of scripts/check_jpeg_decoders.py). One kind Pillow refuses and this decodes: an
/// arithmetic-coded file larger than Pillow's 64 KiB read block ("broken data stream"), since libjpeg's
/// arithmetic decoder cannot wait for more input and TurboJPEG is given the whole file at once.
enum JPEGDecoder {
    /// Pillow reads a 4-component JPEG as "CMYK;I" (Adobe's inverted polarity, always) and converts it
    /// to RGB channel by channel with its integer `cmyk2rgb`; YCCK files are turned into CMYK by
    /// libjpeg first, in both.
    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw VisionError(.corrupt, "JPEG decoding could not start (libturbojpeg: \(String(cString: tjGetErrorStr2(nil))))")
        }
        defer { tjDestroy(handle) }
        let jpeg = bytes.bindMemory(to: UInt8.self).baseAddress!, size = UInt(bytes.count)
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, jpeg, size, &width, &height, &subsampling, &colorspace) == 0 else {
            throw failure(handle, while: "reading the header")
        }
        let count = Int(width) * Int(height)
        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let format = cmyk ? TJPF_CMYK : TJPF_RGB
        var decoded = [UInt8](repeating: 0, count: count * (cmyk ? 4 : 3))
        let status = decoded.withUnsafeMutableBufferPointer {
            tjDecompress2(handle, jpeg, size, $0.baseAddress, width, 0, height, Int32(format.rawValue), 0)
        }
        if status != 0 {
            // A warning leaves a full image: Pillow also keeps the pixels of a file with, say, stray bytes
            // before a marker. Data that ends early is an error there ("image file is truncated"), so here.
            let message = String(cString: tjGetErrorStr2(handle))
            if tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) || message.contains("Premature end") {
                throw failure(handle, while: "decoding")
            }
        }
        guard cmyk else { return RGBImage(width: Int(width), height: Int(height), pixels: decoded) }
        var pixels = [UInt8](repeating: 0, count: count * 3)
        for i in 0..<count {
            // "CMYK;I" reads each stored byte b as 255 − b; cmyk2rgb then gives (255 − k) − c · (255 − k) / 255
            // (rounded as MULDIV255), where 255 − k is the stored black byte itself.
            let notBlack = Int(decoded[4 * i + 3])
            for c in 0..<3 {
                pixels[3 * i + c] = UInt8(notBlack - multiplyDivide255(255 - Int(decoded[4 * i + c]), notBlack))
            }
        }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// Pillow's MULDIV255: a · b / 255 rounded, in integers.
    @inline(__always)
    private static func multiplyDivide255(_ a: Int, _ b: Int) -> Int {
        let t = a * b + 128
        return ((t >> 8) + t) >> 8
    }

    private static func failure(_ handle: tjhandle, while step: String) -> VisionError {
        let message = String(cString: tjGetErrorStr2(handle))
        let truncated = message.contains("Premature end")
        return VisionError(.corrupt, "JPEG \(step) failed: \(message)\(truncated ? " (truncated file)" : "")")
    }
}
