import ArgumentParser
import Foundation
import Transport

/// A worker's or client's CURVE keys, for a coordinator that requires them (`stagebeam keygen`).
struct ClientCurveOptions: ParsableArguments {
    @Option(name: .customLong("curve-server-key"), help: "The coordinator's CURVE public key: 40 Z85 characters, or a file holding them.")
    var serverKey: String?
    @Option(name: .customLong("curve-secret-key-file"), help: "This peer's CURVE secret key file (from `stagebeam keygen`).")
    var secretKeyFile: String?

    func validate() throws {
        if (serverKey == nil) != (secretKeyFile == nil) {
            throw ValidationError("CURVE needs both --curve-server-key and --curve-secret-key-file")
        }
    }

    /// nil when CURVE is not configured.
    func role() throws -> CurveRole? {
        guard let serverKey, let secretKeyFile else { return nil }
        let secret = try readSecretKey(secretKeyFile)
        return .client(
            serverKey: try readKey(serverKey, what: "--curve-server-key"),
            keys: CurveKeyPair(publicKey: try Curve.publicKey(ofSecret: secret), secretKey: secret))
    }
}

/// The coordinator's CURVE settings: its secret key and the public keys it lets in.
struct CoordinatorCurveOptions: ParsableArguments {
    @Option(
        name: .customLong("curve-secret-key-file"),
        help: "The coordinator's CURVE secret key file; with it, only --authorized-keys may connect, encrypted.")
    var secretKeyFile: String?
    @Option(name: .customLong("authorized-keys"), help: "A file of the public keys allowed to connect, one per line (# comments).")
    var authorizedKeys: String?

    func validate() throws {
        if (secretKeyFile == nil) != (authorizedKeys == nil) {
            throw ValidationError("CURVE needs both --curve-secret-key-file and --authorized-keys")
        }
    }

    func settings() throws -> (secretKey: String, authorizedKeys: Set<String>)? {
        guard let secretKeyFile, let authorizedKeys else { return nil }
        let lines = try readText(authorizedKeys, what: "--authorized-keys").split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        for (i, line) in lines.enumerated() where !Curve.isKey(line) {
            throw ValidationError("\(authorizedKeys): entry \(i + 1) is not a CURVE public key (40 Z85 characters)")
        }
        return (try readSecretKey(secretKeyFile), Set(lines))
    }
}

/// The secret key in `path` (`--curve-secret-key-file`). Public and secret keys look alike (40 Z85
/// characters), so a file named like a public key is refused by its name: with it, the peer could
/// never complete a CURVE handshake, and nothing would say why.
func readSecretKey(_ path: String) throws -> String {
    if path.hasSuffix(".public") {
        throw ValidationError(
            "--curve-secret-key-file \(path) is a public key file; pass the secret one (`stagebeam keygen` writes PREFIX.secret)")
    }
    return try readKey(path, what: "--curve-secret-key-file")
}

/// A key given as its 40 Z85 characters or as a file holding them (first line).
func readKey(_ textOrPath: String, what: String) throws -> String {
    if Curve.isKey(textOrPath) { return textOrPath }
    guard let text = try? String(contentsOfFile: textOrPath, encoding: .utf8),
        let key = text.split(whereSeparator: \.isNewline).first.map({ $0.trimmingCharacters(in: .whitespaces) }),
        Curve.isKey(key)
    else {
        throw ValidationError("\(what) \(textOrPath): neither a CURVE key (40 Z85 characters) nor a file holding one")
    }
    return key
}

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create a CURVE key pair: PREFIX.secret (mode 0600) and PREFIX.public.")

    @Option(help: "Path prefix of the two key files.")
    var output: String
    @Flag(help: "Replace key files that exist (their old keys stop working wherever they are listed).")
    var force = false

    func run() throws {
        let secret = output + ".secret", shared = output + ".public"
        let existing = [secret, shared].filter { FileManager.default.fileExists(atPath: $0) }
        if !existing.isEmpty, !force {
            printError("keygen: \(existing.joined(separator: " and ")) exist(s); not replaced (pass --force to replace them)")
            throw ExitCode(1)
        }
        let keys = try Curve.generateKeyPair()
        if force { for path in existing { try? FileManager.default.removeItem(atPath: path) } }
        guard
            FileManager.default.createFile(
                atPath: secret, contents: Data((keys.secretKey + "\n").utf8),
                attributes: [.posixPermissions: 0o600])
        else {
            throw ValidationError("cannot write \(secret)")
        }
        try (keys.publicKey + "\n").write(toFile: shared, atomically: true, encoding: .utf8)
        print(keys.publicKey)
        printError("secret key in \(secret) (keep it private); public key in \(shared)")
    }
}
