import Foundation

/// A file named on the command line that cannot be used: one line naming the option, the path and
/// what is wrong (never a Foundation error dump).
struct InputFileError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// The bytes of the file `path` given with option `what` (e.g. "--image").
func readFile(_ path: String, what: String) throws -> Data {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw InputFileError("\(what) \(path): no such file")
    }
    if isDirectory.boolValue { throw InputFileError("\(what) \(path): a directory, not a file") }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw InputFileError("\(what) \(path): cannot be read (permissions?)")
    }
    return data
}

/// The text of the file `path` given with option `what`.
func readText(_ path: String, what: String) throws -> String {
    guard let text = String(validating: try readFile(path, what: what), as: UTF8.self) else {
        throw InputFileError("\(what) \(path): not UTF-8 text")
    }
    return text
}
