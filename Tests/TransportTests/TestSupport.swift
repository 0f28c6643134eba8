import Foundation
import Synchronization
import Transport

/// Messages delivered by a loop's thread, waited for by the test thread.
final class Inbox: Sendable {
    private let items = Mutex<[[[UInt8]]]>([])

    func append(_ frames: [[UInt8]]) {
        items.withLock { $0.append(frames) }
    }

    var messages: [[[UInt8]]] { items.withLock { $0 } }

    /// Waits until `predicate` holds for the messages so far; returns false on timeout.
    @discardableResult
    func wait(timeout: Duration = .seconds(10), until predicate: ([[[UInt8]]]) -> Bool) -> Bool {
        eventually(timeout: timeout) { predicate(messages) }
    }

    func wait(count: Int, timeout: Duration = .seconds(10)) -> Bool {
        wait(timeout: timeout) { $0.count >= count }
    }
}

/// A value set by one thread and read by another.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    var get: Value { value.withLock { $0 } }
    func update<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// Polls `condition` until it holds; false after `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.002)
    }
    return condition()
}

/// A loopback endpoint with a free port chosen by the kernel.
let anyLoopbackPort = "tcp://127.0.0.1:*"

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
