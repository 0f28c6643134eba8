// kernel-bench: this machine's memory read bandwidth, and how close `linear` comes to it for every
// weight format. Run by scripts/bench/kernels.sh.
//
// Bandwidth: SIMD sums over a buffer far larger than the caches, split across the compute pool's
// threads as the kernels are. Linear: one matrix of ROWS × COLUMNS weights per format (larger than the
// last-level cache even at 4.5 bits per weight), `linear` over it for 1, 4 and 8 input rows; reported
// as weight bytes read per second (each weight is read once per call whatever the rows) and as a
// fraction of the measured bandwidth.
//
//   kernel-bench [--threads N] [--megabytes 1024] [--rows 65536] [--columns 2048] [--formats f32,q4_0,...]
import Foundation
import Kernels

struct Options {
    var threads = ProcessInfo.processInfo.activeProcessorCount
    var megabytes = 1024
    var rows = 65536, columns = 2048
    var formats: [WeightMatrix.Element] = WeightMatrix.Element.allCases

    init(_ arguments: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        func number(_ text: String, _ name: String) -> Int {
            guard let n = Int(text), n > 0 else { fail("\(name) takes a positive integer, got '\(text)'") }
            return n
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--threads": threads = number(value(), "--threads")
            case "--megabytes": megabytes = number(value(), "--megabytes")
            case "--rows": rows = number(value(), "--rows")
            case "--columns": columns = number(value(), "--columns")
            case "--formats":
                formats = value().split(separator: ",").map { name in
                    guard let format = WeightMatrix.Element.allCases.first(where: { "\($0)" == name }) else {
                        fail("unknown format '\(name)'; known: \(WeightMatrix.Element.allCases.map { "\($0)" })")
                    }
                    return format
                }
            default: fail("unknown argument '\(arguments[i])'")
            }
            i += 1
        }
        guard columns % 256 == 0 else { fail("--columns must be a multiple of 256 (a K-quant super-block)") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kernel-bench: \(message)\n".utf8))
    exit(2)
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// The best of `repeats` timings of `body` (the least disturbed by the other processes sharing the cores).
func bestSeconds(repeats: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = now()
        body()
        best = min(best, now() - start)
    }
    return best
}

/// Sums a buffer: the read bandwidth probe. Four independent accumulators so the adds never limit it.
final class ReadTask: ParallelTask {
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

let options = Options(Array(CommandLine.arguments.dropFirst()))
let pool = ComputePool(threads: options.threads)
print("kernel-bench · \(options.threads) threads · quantized kernels: \(quantizedKernelVariant)")

// Bandwidth.
let vectors = options.megabytes * 1_000_000 / 32
let buffer = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: vectors)
buffer.initialize(repeating: SIMD8<Float>(repeating: 1), count: vectors)
let reader = ReadTask(base: buffer, threads: options.threads)
let readSeconds = bestSeconds(repeats: 5) { pool.run(reader, count: vectors, granularity: 1024) }
let bandwidth = Double(vectors * 32) / readSeconds
print(String(format: "memory read bandwidth: %.1f GB/s (best of 5 passes over %d MB)", bandwidth / 1e9, options.megabytes))
buffer.deallocate()

// Linear per format.
let (rows, columns) = (options.rows, options.columns)
let source = UnsafeMutablePointer<Float>.allocate(capacity: columns)
var state: UInt64 = 1
for i in 0..<columns {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    source[i] = Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
}
let inputs = UnsafeMutablePointer<Float>.allocate(capacity: 8 * columns)
for t in 0..<8 { (inputs + t * columns).update(from: source, count: columns) }
let outputs = UnsafeMutablePointer<Float>.allocate(capacity: 8 * rows)
let task = LinearTask()
print("format   bytes/weight  weights MB   1 row GB/s  (of bandwidth)   4 rows ×   8 rows ×")
for format in options.formats {
    let rowBytes = format.rowBytes(columns: columns)!
    let storage = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
    // Every row holds the same encoded values (quantizing each would take minutes); the memory
    // traffic is the same.
    format.quantize(source, count: columns, into: storage)
    for r in 1..<rows { (storage + r * rowBytes).copyMemory(from: storage, byteCount: rowBytes) }
    let weight = WeightMatrix(base: storage, element: format, rows: rows, columns: columns)
    var seconds: [Int: Double] = [:]
    for batch in [1, 4, 8] {
        task(inputs, rows: batch, weight: weight, into: outputs, pool: pool)
        seconds[batch] = bestSeconds(repeats: 5) { task(inputs, rows: batch, weight: weight, into: outputs, pool: pool) }
    }
    let rate = Double(weight.byteCount) / seconds[1]!
    print(
        String(
            format: "%@  %12.4f  %10.1f  %11.1f  %13.0f%%  %8.2f  %9.2f", "\(format)".padding(toLength: 7, withPad: " ", startingAt: 0),
            Double(rowBytes) / Double(columns),
            Double(weight.byteCount) / 1e6, rate / 1e9, 100 * rate / bandwidth, seconds[1]! * 4 / seconds[4]!, seconds[1]! * 8 / seconds[8]!
        ))
    storage.deallocate()
}
print("(N rows ×: rows per second at batch N over batch 1 — N when the weights' reading dominates)")
