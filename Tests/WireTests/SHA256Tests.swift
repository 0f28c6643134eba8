import Foundation
import Testing
import Wire

/// SHA-256 against published vectors (FIPS 180-4 / NIST examples) and digests computed by
/// coreutils `sha256sum` and Python's hashlib for lengths around the 64-byte block and 56-byte
/// padding boundaries.
@Suite struct SHA256Tests {
    static let nistVectors: [(String, String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        )
    ]

    @Test(arguments: nistVectors) func nistVector(input: String, digest: String) {
        #expect(ContentHash.sha256Hex(Array(input.utf8)) == digest)
    }

    @Test func oneMillionAs() {
        #expect(
            ContentHash.sha256Hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// "a" repeated n times, digests from `sha256sum`.
    static let boundaryVectors: [(Int, String)] = [
        (1, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"),
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
        (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
        (127, "c57e9278af78fa3cab38667bef4ce29d783787a2f731d4e12200270f0c32320a"),
        (128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"),
        (129, "c12cb024a2e5551cca0e08fce8f1c5e314555cc3fef6329ee994a3db752166ae"),
        (1000, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    ]

    @Test(arguments: boundaryVectors) func blockBoundary(length: Int, digest: String) {
        #expect(ContentHash.sha256Hex([UInt8](repeating: 0x61, count: length)) == digest)
    }

    /// 100,000 bytes (i·31 + 7) mod 251 (hashlib: 08d042cc…), fed in chunks of awkward sizes:
    /// the streaming buffer must give the same digest however the input is split.
    @Test(arguments: [1, 7, 63, 64, 65, 1000, 4096, 100_000])
    func streamingInChunks(chunk: Int) {
        let data = (0..<100_000).map { UInt8(($0 * 31 + 7) % 251) }
        var hasher = SHA256()
        var start = 0
        while start < data.count {
            let end = min(start + chunk, data.count)
            data[start..<end].withUnsafeBytes { hasher.update($0) }
            start = end
        }
        #expect(ContentHash.hex(hasher.finalize()) == "08d042cceab8034d08c870e707f331cac9f42321044406bcccd156c7258229ab")
    }

    @Test func foundationDataAndArraysAgree() {
        let bytes: [UInt8] = Array("stagebeam".utf8)
        #expect(ContentHash.sha256Hex(Data(bytes)) == ContentHash.sha256Hex(bytes))
    }
}
