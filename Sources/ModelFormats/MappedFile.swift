import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Read-only memory map of a whole file. The bytes are paged in by the kernel on first use and
/// shared with the page cache, so weights are never copied into process memory by reading.
public final class MappedFile: @unchecked Sendable {
    public let url: URL
    private let base: UnsafeRawPointer?
    private let size: Int
    /// Kept open for `read`, which copies bytes without mapping them.
    private let descriptor: Int32

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelFormatError(.fileNotFound, "cannot open \(url.path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw ModelFormatError(.fileNotFound, "cannot stat \(url.path): \(String(cString: strerror(errno)))")
        }
        descriptor = fd
        size = Int(info.st_size)
        if size == 0 {
            base = nil // mmap rejects length 0; an empty file maps to an empty buffer
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            close(fd)
            throw ModelFormatError(.fileNotFound, "cannot map \(url.path): \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        close(descriptor)
    }

    /// Copies the bytes at `range` into `destination` with `pread`, through the page cache but
    /// without mapping them: for data read once and kept in another form (packed rows), whose
    /// mapped pages would otherwise count in resident memory beside that copy. (Reading through the
    /// mapping and releasing each run with `madvise` after use still left 24–32 MB of a 145 MB q8_0
    /// file resident on Linux 6.18, whole tensors among them.)
    public func read(_ range: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw ModelFormatError(.malformedHeader, "\(url.path): bytes \(range) lie outside the file (\(size) bytes)")
        }
        var done = 0
        while done < range.count {
            let count = pread(descriptor, destination + done, range.count - done, off_t(range.lowerBound + done))
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let reason = count < 0 ? String(cString: strerror(errno)) : "the file ended early"
                throw ModelFormatError(.fileNotFound, "cannot read \(url.path) at byte \(range.lowerBound + done): \(reason)")
            }
            done += count
        }
    }

    /// Tells the kernel the pages wholly inside `range` (byte offsets) are not needed now. They are
    /// clean file pages, so they are dropped from resident memory and read back if touched again.
    /// Used after widening f16/bf16 vectors to f32, so a load does not hold both the file and the copy.
    public func release(_ range: Range<Int>) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        guard start < end else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// The whole file. Valid as long as this object lives.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
}
