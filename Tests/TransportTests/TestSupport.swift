import Foundation
import Transport

/// Messages delivered by a loop's thread, waited for by the test thread.
final class Inbox: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [[[UInt8]]] = []

    func append(_ frames: [[UInt8]]) {
        condition.lock()
        items.append(frames)
        condition.broadcast()
        condition.unlock()
    }

    var messages: [[[UInt8]]] {
        condition.lock()
        defer { condition.unlock() }
        return items
    }

    /// Waits until `predicate` holds for the messages so far; returns false on timeout.
    @discardableResult
    func wait(timeout: Duration = .seconds(10), until predicate: ([[[UInt8]]]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(items) {
            if !condition.wait(until: deadline) { return predicate(items) }
        }
        return true
    }

    func wait(count: Int, timeout: Duration = .seconds(10)) -> Bool {
        wait(timeout: timeout) { $0.count >= count }
    }
}

/// A value set by one thread and read by another.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    var get: Value { lock.withLock { value } }
    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
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
