import CZeroMQ

/// A libzmq context: the I/O threads shared by all sockets made from it. Thread-safe.
///
/// Every socket keeps its context alive, so the context is terminated (`zmq_ctx_term`) only after
/// the last socket is closed and never blocks on an open one.
// @unchecked: wraps a libzmq context handle, which libzmq makes safe to use from any thread.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq I/O threads; one moves about a gigabyte a second.
    public init(ioThreads: Int32 = 1) throws(TransportError) {
        guard let handle = zmq_ctx_new() else { throw TransportError.lastZMQ("zmq_ctx_new") }
        self.handle = handle
        guard zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) == 0 else {
            let error = TransportError.lastZMQ("zmq_ctx_set(ZMQ_IO_THREADS, \(ioThreads))")
            zmq_ctx_term(handle)
            throw error
        }
    }

    deinit {
        // EINTR: a signal arrived while waiting for I/O threads; termination must still complete.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
