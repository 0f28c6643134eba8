import Foundation
import Testing

/// The built `stagebeam` executable: next to the test bundle in the build products directory
/// (`swift build --build-tests` builds both), or `STAGEBEAM_BIN`.
public func stagebeamExecutable() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["STAGEBEAM_BIN"] { return URL(fileURLWithPath: path) }
    var candidates = [Bundle.main.bundleURL.appendingPathComponent("stagebeam")]
    if let executable = Bundle.main.executableURL {
        candidates.append(executable.deletingLastPathComponent().appendingPathComponent("stagebeam"))
    }
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("stagebeam"))
    }
    if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) { return found }
    throw ChildProcessError(
        "the stagebeam executable is not in the build products (looked at \(candidates.map(\.path))); "
            + "build it with `swift build --build-tests` or set STAGEBEAM_BIN")
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Repository paths, from this file's location.
public enum Repo {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static func model(_ name: String) -> String { root.appendingPathComponent("Tests/Fixtures/models/\(name)").path }
    /// A GGUF file of Tests/Fixtures/gguf (scripts/fixtures/make_gguf_fixtures.py).
    public static func gguf(_ name: String) -> String { root.appendingPathComponent("Tests/Fixtures/gguf/\(name).gguf").path }
}

/// A temporary directory removed when the test is done with it.
public final class Scratch {
    public let url: URL

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("stagebeam-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// A `stagebeam` child process with its standard output and error in files (pipes could fill up
/// and stall it). Killed when released. `environment` is added to this process's.
public final class ChildProcess {
    public let name: String
    public let process = Process()
    private let outURL: URL
    private let errURL: URL

    public init(_ arguments: [String], name: String, in scratch: Scratch, environment: [String: String] = [:]) throws {
        self.name = name
        outURL = scratch.url.appendingPathComponent("\(name).out")
        errURL = scratch.url.appendingPathComponent("\(name).err")
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        process.executableURL = try stagebeamExecutable()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    public var pid: Int32 { process.processIdentifier }

    /// Its log lines (`--log-format json`), parsed; a line not yet whole is left out.
    public var logs: [[String: Any]] {
        stderr.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The log lines whose message is `message` and whose fields have these values (compared as text).
    public func logged(_ message: String, _ fields: [String: String] = [:]) -> [[String: Any]] {
        logs.filter { line in line["msg"] as? String == message && fields.allSatisfy { "\(line[$0.key] ?? "")" == $0.value } }
    }

    public func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Polls until `predicate` holds (every few milliseconds), or fails after `timeout` seconds.
    @discardableResult
    public func wait<T>(_ what: String, timeout: Double = 20, _ predicate: (ChildProcess) -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = predicate(self) { return value }
            if !process.isRunning, let value = predicate(self) { return value }
            if !process.isRunning {
                throw ChildProcessError("\(name) exited (\(process.terminationStatus)) before \(what)\nstderr:\n\(stderr.suffix(3000))")
            }
            usleep(2000)
        }
        throw ChildProcessError("\(name): timed out waiting for \(what)\nstderr:\n\(stderr.suffix(3000))")
    }

    /// `wait` for async tests: sleeps between looks instead of blocking a thread of the tasks' pool,
    /// which work the test started concurrently (a submission's `async let`) may need to progress.
    public func arriving<T>(_ what: String, timeout: Double = 20, _ predicate: (ChildProcess) -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = predicate(self) { return value }
            if !process.isRunning {
                if let value = predicate(self) { return value }
                throw ChildProcessError("\(name) exited (\(process.terminationStatus)) before \(what)\nstderr:\n\(stderr.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ChildProcessError("\(name): timed out waiting for \(what)\nstderr:\n\(stderr.suffix(3000))")
    }

    /// Waits for the process to exit and returns its status.
    public func exitStatus(timeout: Double = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else {
                throw ChildProcessError("\(name) still running after \(timeout) s\nstderr:\n\(stderr.suffix(3000))")
            }
            usleep(5000)
        }
        return process.terminationStatus
    }
}

/// Runs `stagebeam` to completion and returns (status, stdout, stderr).
public func runStagebeam(
    _ arguments: [String], in scratch: Scratch, name: String, timeout: Double = 60,
    environment: [String: String] = [:]
) throws -> (Int32, String, String) {
    let child = try ChildProcess(arguments, name: name, in: scratch, environment: environment)
    let status = try child.exitStatus(timeout: timeout)
    return (status, child.stdout, child.stderr)
}
