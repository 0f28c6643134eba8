import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The exclusive hold of one coordinator on its journal: `flock` on `<journal>.lock`, which holds the
/// holder's process id. Two coordinators appending to one journal would each replay a table the
/// other does not see, and a job id accepted by both would lose its stored result; the second one
/// refuses to start instead, naming the first one's pid. The kernel drops the lock when the process
/// ends, however it ends, so a crash never leaves a stale lock behind.
struct JournalLock: Sendable {
    let path: String
    let fd: Int32

    init(journal: URL) throws {
        path = journal.path + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ClusterError(.internal, "cannot open the journal's lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            let holder = Self.readPID(fd)
            close(fd)
            if reason == EWOULDBLOCK {
                throw ClusterError(
                    .invalidArgument,
                    "journal \(journal.path) is in use by another coordinator (pid \(holder.map(String.init) ?? "unknown"), "
                        + "lock \(path)); one journal serves one coordinator")
            }
            throw ClusterError(.internal, "cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.fd = fd
    }

    /// Releases the lock. Unlocked before it is closed: the lock belongs to the open file, which a
    /// child process forked at that moment (before its exec closes the copy) would otherwise keep
    /// locked for a while after this process has let go.
    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
