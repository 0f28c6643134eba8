import ClusterTestSupport
import Foundation
import Testing

@testable import Jobs

struct ResultFileTests {
    @Test func tornLastLineIsDroppedAndFinishedIdsAreKnown() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("out.jsonl")
        try Data(#"{"id":"a","status":"succeeded"}\#n{"id":"b","status":"failed"}\#n{"id":"c","sta"#.utf8).write(to: url)
        var logged: [String] = []
        let file = try ResultFile(url: url, retryFailed: false) { logged.append($0) }
        #expect(file.finished == ["a": true, "b": false])
        #expect(logged.count == 1 && logged[0].contains("torn last line (14 bytes"))
        try file.append(Data(#"{"id":"c","status":"succeeded"}"#.utf8))
        #expect(
            try String(contentsOf: url, encoding: .utf8)
                == "{\"id\":\"a\",\"status\":\"succeeded\"}\n{\"id\":\"b\",\"status\":\"failed\"}\n{\"id\":\"c\",\"status\":\"succeeded\"}\n"
        )
    }

    @Test func retryFailedRemovesFailedLines() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("out.jsonl")
        try Data(#"{"id":"a","status":"failed"}\#n{"id":"b","status":"succeeded"}\#n"#.utf8).write(to: url)
        let file = try ResultFile(url: url, retryFailed: true) { _ in }
        #expect(file.finished == ["b": true])
        #expect(try String(contentsOf: url, encoding: .utf8) == "{\"id\":\"b\",\"status\":\"succeeded\"}\n")
    }

    @Test func foreignOrRepeatedLinesStopTheBatch() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("out.jsonl")
        try Data("{\"id\":\"a\",\"status\":\"failed\"}\nhello\n".utf8).write(to: url)
        #expect { try ResultFile(url: url, retryFailed: false) { _ in } } throws: { error in
            (error as? JobsError)?.code == .badOutput && "\(error)".contains("line 2")
        }
        try Data("{\"id\":\"a\",\"status\":\"failed\"}\n{\"id\":\"a\",\"status\":\"failed\"}\n".utf8).write(to: url)
        #expect { try ResultFile(url: url, retryFailed: false) { _ in } } throws: { error in "\(error)".contains("repeats id 'a'") }
    }
}
