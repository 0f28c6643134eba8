import Foundation
import Logging
import Testing

@testable import Logs

@Suite struct LineLogHandlerTests {
    /// 2026-11-27T18:00:00.123Z
    private let time = Date(timeIntervalSince1970: 1_795_802_400.123_4)

    private func line(_ format: LogFormat, _ message: String, _ metadata: Logger.Metadata = [:], level: Logger.Level = .info) -> String {
        LineLogHandler.line(at: time, level: level, component: "coordinator", message: message, metadata: metadata, format: format)
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(LineLogHandler.timestamp(time) == "2026-11-27T18:00:00.123Z")
        #expect(LineLogHandler.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test func textLineHasTimeLevelComponentMessageAndSortedMetadata() {
        let text = line(.text, "job finished", ["stage": "summary", "job_id": "abc", "seconds": .stringConvertible(1.5)])
        #expect(text == "2026-11-27T18:00:00.123Z info coordinator: job finished job_id=abc seconds=1.5 stage=summary\n")
    }

    @Test func textQuotesValuesThatWouldSplitAndKeepsOneEventOnOneLine() {
        let text = line(.text, "bad frame\nfrom \"x\"", ["error": "two words", "empty": "", "eq": "a=b", "plain": "ok"], level: .warning)
        #expect(
            text == #"2026-11-27T18:00:00.123Z warning coordinator: bad frame\nfrom "x" empty="" eq="a=b" error="two words" plain=ok"#
                + "\n")
        #expect(text.filter { $0 == "\n" }.count == 1)
    }

    @Test func jsonEscapesQuotesBackslashesAndControlCharacters() throws {
        let message = "say \"hi\"\nthen \\ leave\t\u{1}"
        let error = "line one\nline \"two\""
        let json = line(.json, message, ["error": .string(error), "job_id": "j-1"])
        #expect(json.hasSuffix("}\n") && json.filter { $0 == "\n" }.count == 1)
        #expect(json.contains(#""msg":"say \"hi\"\nthen \\ leave\t\u0001""#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["ts"] as? String == "2026-11-27T18:00:00.123Z")
        #expect(object["level"] as? String == "info")
        #expect(object["component"] as? String == "coordinator")
        #expect(object["msg"] as? String == message)
        #expect(object["error"] as? String == error)
        #expect(object["job_id"] as? String == "j-1")
    }

    @Test func jsonKeepsNumbersAndBooleansFlattensDictionariesAndProtectsFixedFields() throws {
        let json = line(
            .json, "done",
            [
                "n": .stringConvertible(4), "seconds": .stringConvertible(0.25), "image": .stringConvertible(true),
                "ratio": .stringConvertible(Double.nan), "worker": ["id": "w1", "roles": ["generate", "judge"]],
                "msg": "shadowed", "level": "shadowed"
            ])
        #expect(json.hasPrefix(#"{"ts":"2026-11-27T18:00:00.123Z","level":"info","component":"coordinator","msg":"done","image":true,"#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["n"] as? Int == 4)
        #expect(object["seconds"] as? Double == 0.25)
        #expect(object["image"] as? Bool == true)
        #expect(object["ratio"] as? String == "nan")
        #expect(object["worker.id"] as? String == "w1")
        #expect(object["worker.roles"] as? [String] == ["generate", "judge"])
        #expect(object["msg"] as? String == "done" && object["meta_msg"] as? String == "shadowed")
        #expect(object["level"] as? String == "info" && object["meta_level"] as? String == "shadowed")
        #expect(line(.text, "done", ["roles": ["generate", "judge"]]).hasSuffix(" roles=generate,judge\n"))
    }

    /// The handler's own path: logger and call metadata merged (the call's wins), levels filtered,
    /// and lines longer than a pipe writes atomically (PIPE_BUF) whole although eight tasks log at once.
    @Test func writesWholeLinesFromManyTasksThroughALogger() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        // Read on a thread of its own: the writers block while the pipe is full, and they may hold
        // every thread of the tasks' pool.
        async let data = withCheckedContinuation { done in
            Thread { done.resume(returning: reader.readDataToEndOfFile()) }.start()
        }
        var logger = Logger(label: "worker") { LineLogHandler(label: $0, format: .json, level: .info, fileDescriptor: fds[1]) }
        logger[metadataKey: "worker_id"] = "w1"
        logger[metadataKey: "job_id"] = "from-the-logger"
        let sink = logger
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for _ in 0..<20 {
                        sink.info(
                            "work done", metadata: ["job_id": "job-\(task)", "padding": .string(String(repeating: "x", count: 10_000))])
                        sink.debug("below the level")
                    }
                }
            }
        }
        close(fds[1])
        let lines = String(decoding: await data, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 160)
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["component"] as? String == "worker" && object["worker_id"] as? String == "w1")
            #expect((object["job_id"] as? String)?.hasPrefix("job-") == true)
        }
    }
}
