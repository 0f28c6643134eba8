import ClusterTestSupport
import Foundation
import Testing

/// Whether the C client can be built here: protoc-c, and libprotobuf-c and libzmq for pkg-config.
private let cToolchain: Bool = {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/bin/sh")
    probe.arguments = ["-c", "command -v protoc-c && command -v cc && pkg-config --exists libprotobuf-c libzmq"]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}()

/// clients/c built from the schema with protoc-c and run against a live coordinator.
@Suite(.serialized) struct CClientTests {
    /// stagebeam-submit-c submits a question with an image, streams the four stages' events, and
    /// prints the same staged answer as `stagebeam submit` with the same options; it fetches the
    /// result by id alone, and cancelling the finished job returns that result.
    @Test(
        .enabled(
            if: cToolchain,
            "the C client needs protoc-c, a C compiler, libprotobuf-c and libzmq (apt-get install protobuf-c-compiler libprotobuf-c-dev libzmq3-dev)"
        ))
    func submitWithImageStreamsStagesAndEqualsSubmit() throws {
        let scratch = try Scratch()
        let build = scratch.path("c")
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        make.arguments = ["make", "-s", "-C", Repo.root.appendingPathComponent("clients/c").path, "BUILD=\(build)"]
        let makeLog = scratch.url.appendingPathComponent("make.log")
        try Data().write(to: makeLog)
        make.standardOutput = try FileHandle(forWritingTo: makeLog)
        make.standardError = make.standardOutput
        try make.run()
        make.waitUntilExit()
        try #require(make.terminationStatus == 0, "make failed:\n\((try? String(contentsOf: makeLog, encoding: .utf8)) ?? "")")

        let served = try VisionCluster(scratch: scratch)
        let (status, stdout, stderr) = try ChildProcessLike.run(
            build + "/stagebeam-submit-c",
            ["--coordinator", served.cluster.endpoint, "--timeout-s", "120", "--job-id", "c-client-job"] + VisionCluster.options,
            in: scratch)
        #expect(status == 0, "\(stderr)")

        let submitted = try served.submit()
        let text = try #require((submitted["search"] as? [String: Any])?["text"] as? String)
        let answer = try #require(submitted["answer"] as? String)
        #expect(stdout == text + "\n\nanswer: " + answer + "\n")
        let winners = stderr.split(separator: "\n").filter { $0.contains(" winner: candidate ") }
        #expect(winners.count == 4, "one winner event per stage:\n\(stderr)")
        #expect(stderr.split(separator: "\n").filter { $0.hasPrefix("> ") }.count == 4, "\(stderr)")

        // By id alone: fetched, and cancelled too late (it answers with the finished result).
        for mode in ["--get", "--cancel"] {
            let again = try ChildProcessLike.run(
                build + "/stagebeam-submit-c", ["--coordinator", served.cluster.endpoint, mode, "c-client-job", "--timeout-s", "30"],
                in: scratch)
            #expect(again.status == 0 && again.stdout == stdout, "\(mode): \(again)")
        }
        let unknown = try ChildProcessLike.run(
            build + "/stagebeam-submit-c", ["--coordinator", served.cluster.endpoint, "--get", "no-such-job", "--timeout-s", "30"],
            in: scratch)
        #expect(unknown.status == 1 && unknown.stderr.contains("unknown_job"), "\(unknown)")

        // A refused job: the coordinator's error code, exit status 1.
        let refused = try ChildProcessLike.run(
            build + "/stagebeam-submit-c", ["--coordinator", served.cluster.endpoint, "--question", " ", "--timeout-s", "30"], in: scratch)
        #expect(refused.status == 1 && refused.stderr.contains("invalid_argument"), "\(refused)")
    }
}

/// Runs a program that is not `stagebeam` to completion.
enum ChildProcessLike {
    static func run(_ path: String, _ arguments: [String], in scratch: Scratch) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let name = UUID().uuidString.prefix(8)
        let out = scratch.url.appendingPathComponent("\(name).out"), err = scratch.url.appendingPathComponent("\(name).err")
        for file in [out, err] { try Data().write(to: file) }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
    }
}
