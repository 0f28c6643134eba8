import Foundation
import Testing
import Transport
import Wire

/// Owning-thread loops over real loopback sockets.
@Suite struct SocketLoopTests {
    /// Three workers announce themselves with READY envelopes; the ROUTER answers each with a
    /// GenerateRequest addressed by routing id, and each worker gets exactly its own.
    @Test func routerAndSeveralDealersExchangeEnvelopes() throws {
        let context = try ZMQContext()
        let codec = EnvelopeCodec()
        let routerErrors = Inbox()
        let routerBox = Locked<SocketLoop?>(nil)
        let router = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort]),
            handlers: .init(
                onMessage: { frames in
                    guard frames.count == 2, case .ready(let ready)? = try? codec.decode(frames[1]) else {
                        routerErrors.append(frames)
                        return
                    }
                    var request = Stagebeam_V1_GenerateRequest()
                    request.requestID = "for-\(ready.workerID)"
                    request.n = ready.maxBatchSequences
                    try? routerBox.get?.send([frames[0], try! codec.encode(.generateRequest(request))])
                },
                onSendFailure: { frames, _ in routerErrors.append(frames) }))
        routerBox.update { $0 = router }
        defer { router.close() }

        let names = ["alpha", "beta", "gamma"]
        var dealers: [(SocketLoop, Inbox)] = []
        for (index, name) in names.enumerated() {
            var ready = Stagebeam_V1_Ready()
            ready.workerID = name
            ready.maxBatchSequences = UInt32(index + 1)
            let hello = try codec.encode(.ready(ready))
            let inbox = Inbox()
            let dealer = try SocketLoop(
                context: context,
                configuration: .init(kind: .dealer, connect: router.boundEndpoints, routingID: bytes(name)),
                handlers: .init(onMessage: { inbox.append($0) }, greeting: { [hello] }))
            dealers.append((dealer, inbox))
        }
        defer { for (dealer, _) in dealers { dealer.close() } }

        for (index, (_, inbox)) in dealers.enumerated() {
            #expect(inbox.wait(count: 1))
            let messages = inbox.messages
            #expect(messages.count == 1)
            guard let frames = messages.first, frames.count == 1,
                case .generateRequest(let request) = try codec.decode(frames[0])
            else {
                Issue.record("\(names[index]) got \(messages)")
                continue
            }
            #expect(request.requestID == "for-\(names[index])")
            #expect(request.n == UInt32(index + 1))
        }
        #expect(routerErrors.messages.isEmpty)
    }

    /// Four threads on each side push messages through the loops' queues at once; every message
    /// arrives once, and each sending thread's messages keep their order. (No high-water mark:
    /// this is about the queues and threads; the ROUTER's drop-when-full is tested below.)
    @Test func manyMessagesBothWaysFromSeveralThreads() throws {
        let context = try ZMQContext()
        let threads = 4, perThread = 500, dealerCount = 2
        let toRouter = Inbox()
        let router = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort], highWaterMark: 0),
            handlers: .init(onMessage: { toRouter.append($0) }))
        defer { router.close() }

        let dealers = try (0..<dealerCount).map { index in
            let id = bytes("d\(index)")
            let inbox = Inbox()
            let loop = try SocketLoop(
                context: context,
                configuration: .init(kind: .dealer, connect: router.boundEndpoints, routingID: id, highWaterMark: 0),
                handlers: .init(onMessage: { inbox.append($0) }, greeting: { [bytes("hello")] }))
            return (id: id, loop: loop, inbox: inbox)
        }
        defer { for dealer in dealers { dealer.loop.close() } }
        // The ROUTER can address a dealer only once it has heard from it.
        #expect(toRouter.wait(count: dealerCount))

        let group = DispatchGroup()
        for thread in 0..<threads {
            DispatchQueue.global().async(group: group) {
                for seq in 0..<perThread {
                    let payload = [UInt8(thread)] + withUnsafeBytes(of: UInt32(seq).littleEndian, Array.init)
                    for dealer in dealers {
                        try? dealer.loop.send([payload])
                        try? router.send([dealer.id, payload])
                    }
                }
            }
        }
        group.wait()

        let total = threads * perThread * dealerCount
        #expect(toRouter.wait(count: dealerCount + total))
        for dealer in dealers { #expect(dealer.inbox.wait(count: threads * perThread)) }

        func checkOrdered(_ payloads: [[UInt8]]) {
            var next = [Int](repeating: 0, count: threads)
            for payload in payloads {
                let thread = Int(payload[0])
                let seq = Int(payload[1]) | Int(payload[2]) << 8 | Int(payload[3]) << 16 | Int(payload[4]) << 24
                #expect(seq == next[thread], "thread \(thread): got \(seq), expected \(next[thread])")
                next[thread] = seq + 1
            }
            #expect(next == [Int](repeating: perThread, count: threads))
        }
        let upstream = toRouter.messages.filter { $0[1] != bytes("hello") }
        #expect(upstream.count == total)
        for dealer in dealers {
            checkOrdered(upstream.filter { $0[0] == dealer.id }.map { $0[1] })
            checkOrdered(dealer.inbox.messages.map { $0[0] })
        }
    }

    /// A ROUTER never lets one slow peer hold up the others: messages beyond a full peer's
    /// high-water mark are dropped and reported, and everything else arrives.
    @Test func routerDropsAndReportsWhatAFullPeerCannotTake() throws {
        let context = try ZMQContext()
        let failures = Locked(0)
        let greeted = Inbox()
        let router = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort], highWaterMark: 10),
            handlers: .init(
                onMessage: { greeted.append($0) },
                onSendFailure: { _, error in
                    if error.code == .peerBusy { failures.update { $0 += 1 } }
                }))
        defer { router.close() }
        // A peer that never reads.
        let sleeper = try ZMQSocket(context: context, kind: .dealer)
        try sleeper.setRoutingID(bytes("sleeper"))
        try sleeper.setHighWaterMarks(send: 10, receive: 10)
        try sleeper.connect(router.boundEndpoints[0])
        try sleeper.send([bytes("hello")])
        #expect(greeted.wait(count: 1))

        let sent = 1000
        for index in 0..<sent { try router.send([bytes("sleeper"), bytes("\(index)")]) }
        #expect(eventually { router.queuedCount == 0 })
        let dropped = failures.get
        #expect(dropped > 0)
        var delivered = 0
        while let frames = try sleeper.receive(timeout: .milliseconds(200)) {
            #expect(frames.count == 1)
            delivered += 1
        }
        #expect(delivered + dropped == sent, "delivered \(delivered), dropped \(dropped)")
    }

    /// A ROUTER's reconnect rebinds the port it had resolved, so peers find it again.
    @Test func routerRebindsTheSamePortOnReconnect() throws {
        let context = try ZMQContext()
        let inbox = Inbox()
        let socketsOpened = Locked(0) // the greeting is asked for once per new socket
        let router = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort]),
            handlers: .init(
                onMessage: { inbox.append($0) },
                greeting: {
                    socketsOpened.update { $0 += 1 }
                    return nil
                }))
        defer { router.close() }
        let dealer = try ZMQSocket(context: context, kind: .dealer)
        try dealer.setRoutingID(bytes("d"))
        try dealer.connect(router.boundEndpoints[0])
        try dealer.send([bytes("before")])
        #expect(inbox.wait(count: 1))

        router.reconnect(after: .milliseconds(10))
        #expect(eventually { socketsOpened.get == 2 })
        // libzmq's own TCP reconnect brings the dealer back; until then sends may go nowhere.
        let arrived = eventually {
            _ = try? dealer.send([bytes("after")], dontWait: true)
            return inbox.wait(timeout: .milliseconds(50)) { $0.contains { $0[1] == bytes("after") } }
        }
        #expect(arrived)
    }

    @Test func sendAfterCloseFailsClearly() throws {
        let context = try ZMQContext()
        let loop = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort]),
            handlers: .init(onMessage: { _ in }))
        loop.close()
        loop.close()
        do {
            try loop.send([bytes("late")])
            Issue.record("sent on a closed loop")
        } catch {
            #expect(error.code == .closed)
        }
    }

    @Test func routerReportsUndeliverableMessages() throws {
        let context = try ZMQContext()
        let failures = Inbox()
        let loop = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort]),
            handlers: .init(
                onMessage: { _ in },
                onSendFailure: { frames, error in
                    if error.code == .unreachablePeer { failures.append(frames) }
                }))
        defer { loop.close() }
        try loop.send([bytes("ghost"), bytes("boo")])
        #expect(failures.wait(count: 1))
        #expect(failures.messages.first == [bytes("ghost"), bytes("boo")])
    }

    @Test func ticksRunOnTheLoopThread() throws {
        let context = try ZMQContext()
        let ticks = Locked(0)
        let loop = try SocketLoop(
            context: context,
            configuration: .init(kind: .dealer, connect: ["tcp://127.0.0.1:1"], tick: .milliseconds(10)),
            handlers: .init(onMessage: { _ in }, onTick: { _, _ in ticks.update { $0 += 1 } }))
        defer { loop.close() }
        #expect(eventually { ticks.get >= 5 })
    }
}
