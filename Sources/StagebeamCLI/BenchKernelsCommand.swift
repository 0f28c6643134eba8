import ArgumentParser
import Foundation
import Kernels

/// This machine's memory read bandwidth, and how close `linear` comes to it for every weight format
/// (scripts/bench/kernels.sh).
///
/// Bandwidth: SIMD sums over a buffer far larger than the caches, split across the compute pool's
/// threads as the kernels are. Linear: one matrix of ROWS × COLUMNS weights per format (larger than
/// the last-level cache even at 4.5 bits per weight), `linear` over it for 1, 4 and 8 input rows;
/// reported as weight bytes read per second (each weight is read once per call whatever the rows)
/// and as a fraction of the measured bandwidth.
struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Measure memory read bandwidth and the weight bytes per second `linear` reads for every weight format.")

    @Option(help: "Compute threads (default: all cores).")
    var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Size of the bandwidth probe's buffer in MB.")
    var megabytes = 1024
    @Option(help: "Rows of each weight matrix.")
    var rows = 65536
    @Option(help: "Columns of each weight matrix (a multiple of 256, a K-quant super-block).")
    var columns = 2048
    @Option(
        help:
            "Weight formats to measure, comma-separated (default: all: \(WeightMatrix.Element.allCases.map { "\($0)" }.joined(separator: ","))."
    )
    var formats: String?
    @Flag(name: .customLong("bandwidth-only"), help: "Measure the bandwidth only.")
    var bandwidthOnly = false

    func validate() throws {
        guard threads >= 1, megabytes >= 1, rows >= 1, columns >= 256 else {
            throw ValidationError("--threads, --megabytes and --rows must be ≥ 1, --columns ≥ 256")
        }
        guard columns % 256 == 0 else { throw ValidationError("--columns must be a multiple of 256 (a K-quant super-block)") }
        _ = try formatList()
    }

    private func formatList() throws -> [WeightMatrix.Element] {
        guard let formats else { return WeightMatrix.Element.allCases }
        return try formats.split(separator: ",").map { name in
            guard let format = WeightMatrix.Element.allCases.first(where: { "\($0)" == name }) else {
                throw ValidationError("unknown format '\(name)'; known: \(WeightMatrix.Element.allCases.map { "\($0)" })")
            }
            return format
        }
    }

    func run() throws {
        let pool = ComputePool(threads: threads)
        print("bench-kernels · \(threads) threads · kernels: \(kernelVariant)")

        let vectors = megabytes * 1_000_000 / 32
        let buffer = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: vectors)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: SIMD8<Float>(repeating: 1), count: vectors)
        let reader = ReadTask(base: buffer, threads: threads)
        let readSeconds = bestSeconds(repeats: 5) { pool.run(reader, count: vectors, granularity: 1024) }
        let bandwidth = Double(vectors * 32) / readSeconds
        print(String(format: "memory read bandwidth: %.1f GB/s (best of 5 passes over %d MB)", bandwidth / 1e9, megabytes))
        if bandwidthOnly { return }

        let source = UnsafeMutablePointer<Float>.allocate(capacity: columns)
        var state: UInt64 = 1
        for i in 0..<columns {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            source[i] = Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let inputs = UnsafeMutablePointer<Float>.allocate(capacity: 8 * columns)
        for t in 0..<8 { (inputs + t * columns).update(from: source, count: columns) }
        let outputs = UnsafeMutablePointer<Float>.allocate(capacity: 8 * rows)
        defer {
            source.deallocate()
            inputs.deallocate()
            outputs.deallocate()
        }
        let task = LinearTask()
        print("format   bytes/weight  weights MB   1 row GB/s  (of bandwidth)   4 rows ×   8 rows ×")
        for format in try formatList() {
            let rowBytes = format.rowBytes(columns: columns)!
            let storage = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
            defer { storage.deallocate() }
            // Every row holds the same encoded values (quantizing each would take minutes); the memory
            // traffic is the same.
            format.quantize(source, count: columns, into: storage)
            for r in 1..<rows { (storage + r * rowBytes).copyMemory(from: storage, byteCount: rowBytes) }
            let weight = WeightMatrix(base: storage, element: format, rows: rows, columns: columns).packedForProducts()
            var seconds: [Int: Double] = [:]
            for batch in [1, 4, 8] {
                task(inputs, rows: batch, weight: weight, into: outputs, pool: pool)
                seconds[batch] = bestSeconds(repeats: 5) { task(inputs, rows: batch, weight: weight, into: outputs, pool: pool) }
            }
            let rate = Double(weight.byteCount) / seconds[1]!
            print(
                String(
                    format: "%@  %12.4f  %10.1f  %11.1f  %13.0f%%  %8.2f  %9.2f",
                    "\(format)".padding(toLength: 7, withPad: " ", startingAt: 0), Double(rowBytes) / Double(columns),
                    Double(weight.byteCount) / 1e6, rate / 1e9, 100 * rate / bandwidth, seconds[1]! * 4 / seconds[4]!,
                    seconds[1]! * 8 / seconds[8]!))
        }
        print("(N rows ×: rows per second at batch N over batch 1 — N when the weights' reading dominates)")
    }
}

/// The best of `repeats` timings of `body` (the least disturbed by the other processes sharing the cores).
private func bestSeconds(repeats: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = ContinuousClock.now
        body()
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        best = min(best, Double(seconds) + Double(attoseconds) * 1e-18)
    }
    return best
}

/// Sums a buffer: the read bandwidth probe. Four independent accumulators so the adds never limit it.
private final class ReadTask: ParallelTask {
    let base: UnsafePointer<SIMD8<Float>>
    var sums: [Float]
    init(base: UnsafePointer<SIMD8<Float>>, threads: Int) {
        self.base = base
        sums = [Float](repeating: 0, count: threads)
    }
    func run(chunk: Int, start: Int, end: Int) {
        var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
        var i = start
        while i + 4 <= end {
            a += base[i]
            b += base[i + 1]
            c += base[i + 2]
            d += base[i + 3]
            i += 4
        }
        sums[chunk] = ((a + b) + (c + d)).sum()
    }
}
