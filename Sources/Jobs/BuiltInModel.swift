import Foundation

/// Where the built-in model (`models/stagebeam-shapes`) and its held-out set (`datasets/shapes`) are
/// when no path is given. Both are committed to the repository so that a fresh checkout answers and
/// evaluates with no download and no flags — from the repository root, or through the built
/// executable (`.build/release/stagebeam`) from anywhere.
///
/// The model: `$STAGEBEAM_MODEL` if set; else `models/stagebeam-shapes` under the current directory;
/// else under the executable's directory or the nearest of its parents that has it. A directory counts
/// only if it holds `config.json`. The dataset: the same places, without the environment variable.
public struct BuiltInModel: Sendable {
    public static let modelPath = "models/stagebeam-shapes"
    public static let datasetPath = "datasets/shapes/test.jsonl"

    var environment: [String: String]
    var currentDirectory: URL
    var executable: URL?

    /// As this process sees them.
    public static let current = BuiltInModel(
        environment: ProcessInfo.processInfo.environment,
        currentDirectory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        executable: Bundle.main.executableURL)

    /// The model directory; the error names every place tried.
    public func directory() throws -> URL {
        if let path = environment["STAGEBEAM_MODEL"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return try locate(Self.modelPath, marker: "config.json", what: "the built-in model", option: "--model DIR (or set STAGEBEAM_MODEL)")
    }

    /// The held-out dataset's JSONL file; the error names every place tried.
    public func dataset() throws -> URL {
        try locate(Self.datasetPath, marker: nil, what: "the built-in dataset", option: "--dataset FILE")
    }

    /// `relative` under the current directory, then under the executable's directory and each parent.
    func locate(_ relative: String, marker: String?, what: String, option: String) throws -> URL {
        var bases = [currentDirectory.standardizedFileURL]
        // The real path: `.build/release` is a link into `.build/x86_64-unknown-linux-gnu/release`.
        var directory = executable?.resolvingSymlinksInPath().deletingLastPathComponent()
        while let current = directory {
            bases.append(current)
            directory = current.pathComponents.count > 1 ? current.deletingLastPathComponent() : nil
        }
        var tried: [String] = []
        for base in bases {
            let candidate = base.appendingPathComponent(relative)
            guard !tried.contains(candidate.path) else { continue }
            tried.append(candidate.path)
            let probe = marker.map { candidate.appendingPathComponent($0) } ?? candidate
            if FileManager.default.fileExists(atPath: probe.path) { return candidate }
        }
        throw JobsError(.invalidArgument, "\(what) is not in any of \(tried.joined(separator: ", ")); pass \(option)")
    }
}
