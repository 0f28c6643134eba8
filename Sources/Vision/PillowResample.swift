import Foundation

/// PIL's resampling filters, numbered as `PIL.Image.Resampling` (the `resample` key of a processor config).
public enum ResamplingFilter: Int, Sendable {
    case lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5

    /// Half-width of the filter at scale 1, in source pixels.
    var support: Double {
        switch self {
        case .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    /// The filter kernels of Pillow's Resample.c, term for term.
    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = abs(x)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let t = x * Double.pi
            // Pillow writes these constants as C floats.
            return sin(t) / t * (Double(Float(0.54)) + Double(Float(0.46)) * cos(t))
        case .bicubic:
            let a = -0.5, x = abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            func sinc(_ x: Double) -> Double { x == 0 ? 1 : sin(x * Double.pi) / (x * Double.pi) }
            return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
        }
    }
}

/// `PIL.Image.resize` of an 8-bit RGB image, reproduced bit for bit: Pillow's convolution
/// resampling with the filter widened by the downscale factor (antialiasing), coefficients in
/// 22-bit fixed point, one pass per axis, each rounded to 8 bits, in Pillow's order.
enum PillowResample {
    /// Fixed-point fraction bits of Pillow's 8-bit path (`32 - 8 - 2`).
    static let precisionBits = 22

    static func resize(_ image: RGBImage, width: Int, height: Int, filter: ResamplingFilter) -> RGBImage {
        if image.width == width && image.height == height { return image }
        let horizontal = Coefficients(inSize: image.width, outSize: width, filter: filter)
        let vertical = Coefficients(inSize: image.height, outSize: height, filter: filter)
        if width == image.width { return verticalPass(image, rowOffset: 0, coefficients: vertical) }
        if height == image.height { return horizontalPass(image, rows: 0..<image.height, coefficients: horizontal) }
        // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks by
        // more than twice as many pixels as the width; the order changes the intermediate rounding.
        let heightLoss = image.height - height, widthLoss = image.width - width
        if heightLoss > 0 && heightLoss > 2 * widthLoss {
            let shrunk = verticalPass(image, rowOffset: 0, coefficients: vertical)
            return horizontalPass(shrunk, rows: 0..<height, coefficients: horizontal)
        }
        // Only the source rows the vertical pass reads are resampled horizontally.
        let first = vertical.bounds[0], last = vertical.bounds[2 * (height - 1)] + vertical.bounds[2 * height - 1]
        let narrowed = horizontalPass(image, rows: first..<last, coefficients: horizontal)
        return verticalPass(narrowed, rowOffset: first, coefficients: vertical)
    }

    /// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`.
    struct Coefficients {
        let kernelSize: Int
        /// (outSize, 2): first source index and count for each output index.
        let bounds: [Int]
        /// (outSize, kernelSize) fixed-point weights.
        let weights: [Int32]

        init(inSize: Int, outSize: Int, filter: ResamplingFilter) {
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = filter.support * filterScale
            kernelSize = Int(support.rounded(.up)) * 2 + 1
            var bounds = [Int](repeating: 0, count: outSize * 2)
            var weights = [Int32](repeating: 0, count: outSize * kernelSize)
            var k = [Double](repeating: 0, count: kernelSize)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                let inverse = 1 / filterScale
                // C's (int) cast truncates toward zero.
                let xmin = max(0, Int(center - support + 0.5))
                let xmax = min(inSize, Int(center + support + 0.5)) - xmin
                var total = 0.0
                for x in 0..<kernelSize { k[x] = 0 }
                for x in 0..<max(xmax, 0) {
                    let w = filter.weight((Double(x + xmin) - center + 0.5) * inverse)
                    k[x] = w
                    total += w
                }
                for x in 0..<max(xmax, 0) where total != 0 { k[x] /= total }
                let one = Double(1 << PillowResample.precisionBits)
                for x in 0..<kernelSize {
                    weights[xx * kernelSize + x] = Int32(k[x] < 0 ? -0.5 + k[x] * one : 0.5 + k[x] * one)
                }
                bounds[2 * xx] = xmin
                bounds[2 * xx + 1] = xmax
            }
            self.bounds = bounds
            self.weights = weights
        }
    }

    @inline(__always)
    static func clip8(_ sum: Int) -> UInt8 {
        UInt8(clamping: sum >> precisionBits)
    }

    static func horizontalPass(_ image: RGBImage, rows: Range<Int>, coefficients c: Coefficients) -> RGBImage {
        let outWidth = c.bounds.count / 2, inWidth = image.width
        var out = [UInt8](repeating: 0, count: rows.count * outWidth * 3)
        let half = 1 << (precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            c.weights.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { dst in
                    for (yy, y) in rows.enumerated() {
                        let row = src.baseAddress! + y * inWidth * 3
                        for xx in 0..<outWidth {
                            let xmin = c.bounds[2 * xx], count = c.bounds[2 * xx + 1]
                            let k = w.baseAddress! + xx * c.kernelSize
                            var s0 = half, s1 = half, s2 = half
                            for x in 0..<count {
                                let p = row + (x + xmin) * 3, kx = Int(k[x])
                                s0 += Int(p[0]) * kx; s1 += Int(p[1]) * kx; s2 += Int(p[2]) * kx
                            }
                            let o = (yy * outWidth + xx) * 3
                            dst[o] = clip8(s0); dst[o + 1] = clip8(s1); dst[o + 2] = clip8(s2)
                        }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: rows.count, pixels: out)
    }

    /// `rowOffset`: source row index of `image`'s first row (the horizontal pass may have skipped rows).
    static func verticalPass(_ image: RGBImage, rowOffset: Int, coefficients c: Coefficients) -> RGBImage {
        let outHeight = c.bounds.count / 2, width = image.width
        var out = [UInt8](repeating: 0, count: outHeight * width * 3)
        let half = 1 << (precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            c.weights.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { dst in
                    for yy in 0..<outHeight {
                        let ymin = c.bounds[2 * yy] - rowOffset, count = c.bounds[2 * yy + 1]
                        let k = w.baseAddress! + yy * c.kernelSize
                        for x in 0..<width {
                            var s0 = half, s1 = half, s2 = half
                            for y in 0..<count {
                                let p = src.baseAddress! + ((y + ymin) * width + x) * 3, ky = Int(k[y])
                                s0 += Int(p[0]) * ky; s1 += Int(p[1]) * ky; s2 += Int(p[2]) * ky
                            }
                            let o = (yy * width + x) * 3
                            dst[o] = clip8(s0); dst[o + 1] = clip8(s1); dst[o + 2] = clip8(s2)
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: outHeight, pixels: out)
    }
}
