import Foundation
import Testing

@testable import ModelFormats

@Suite struct MappedFileTests {
    /// `read` copies the bytes the mapping shows, at any offset and length, and a range outside the
    /// file is an error naming the file and its size.
    @Test func readCopiesWhatTheMappingHolds() throws {
        let directory = try TemporaryDirectory()
        let bytes = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) })
        try directory.write("data.bin", bytes)
        let file = try MappedFile(url: directory.url.appendingPathComponent("data.bin"))
        for range in [0..<1, 0..<10_000, 4095..<4097, 9_000..<10_000] {
            var copy = [UInt8](repeating: 0, count: range.count)
            try copy.withUnsafeMutableBytes { try file.read(range, into: $0.baseAddress!) }
            #expect(copy == Array(file.bytes[range]), "bytes \(range)")
        }
        var sink = [UInt8](repeating: 0, count: 16)
        let error = #expect(throws: ModelFormatError.self) {
            try sink.withUnsafeMutableBytes { try file.read(9_990..<10_006, into: $0.baseAddress!) }
        }
        #expect(error?.message.contains("data.bin") == true && error?.message.contains("10000 bytes") == true)
    }
}
