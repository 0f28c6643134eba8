import Foundation
import Testing
import Transport

/// Heartbeat bookkeeping and backoff with synthetic instants of the monotonic clock.
@Suite struct LivenessRulesTests {
    let start = ContinuousClock.now

    @Test func peerIsDeadAfterKMissedIntervals() {
        var table = PeerLiveness<String>(policy: HeartbeatPolicy(interval: .milliseconds(100), missedLimit: 3))
        table.heard("a", at: start)
        table.heard("b", at: start + .milliseconds(150))
        #expect(table.isAlive("a", at: start + .milliseconds(300)))
        #expect(table.removeExpired(at: start + .milliseconds(300)).isEmpty)
        #expect(!table.isAlive("a", at: start + .milliseconds(301)))
        #expect(table.removeExpired(at: start + .milliseconds(301)) == ["a"])
        #expect(table.peers == ["b"])
        table.heard("b", at: start + .milliseconds(400)) // any sign of life renews
        #expect(table.removeExpired(at: start + .milliseconds(650)).isEmpty)
        table.forget("b")
        #expect(table.peers.isEmpty && !table.isAlive("b", at: start))
    }

    @Test func scheduleBeatsEveryIntervalWithoutBursts() {
        var schedule = HeartbeatSchedule(interval: .milliseconds(100), start: start)
        // Milliseconds after start → due? After the stall at 1000, one beat, then a full interval.
        let checks: [(Int, Bool)] = [(0, true), (99, false), (100, true), (1000, true), (1050, false), (1100, true)]
        for (ms, expected) in checks {
            let due = schedule.isDue(at: start + .milliseconds(ms))
            #expect(due == expected, "at \(ms) ms")
        }
    }

    @Test func backoffDoublesUpToTheCapAndResets() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .milliseconds(1000))
        let delays = (0..<7).map { _ in backoff.next() }
        #expect(delays == [100, 200, 400, 800, 1000, 1000, 1000].map { Duration.milliseconds($0) })
        #expect(backoff.attempts == 7)
        backoff.reset()
        #expect(backoff.next() == .milliseconds(100))
    }
}

/// Liveness over real sockets with short intervals.
@Suite struct LivenessOverSocketsTests {
    let policy = HeartbeatPolicy(interval: .milliseconds(20), missedLimit: 3)

    /// The coordinator's side: a ROUTER tracking its peers sees a worker's heartbeats, then
    /// declares it dead a few intervals after the worker goes away.
    @Test func routerDetectsASilentPeer() throws {
        let context = try ZMQContext()
        let table = Locked(PeerLiveness<[UInt8]>(policy: policy))
        let dead = Inbox()
        // When the worker was last heard, and when the router found it silent.
        let lastHeard = Locked<ContinuousClock.Instant?>(nil), foundDead = Locked<ContinuousClock.Instant?>(nil)
        let box = Locked<SocketLoop?>(nil)
        let router = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort], tick: .milliseconds(5)),
            handlers: .init(
                onMessage: { frames in
                    let now = ContinuousClock.now
                    lastHeard.update { $0 = now }
                    table.update { $0.heard(frames[0], at: now) }
                    try? box.get?.send(frames) // answer, so the worker sees a live peer
                },
                onTick: { _, now in
                    for peer in table.update({ $0.removeExpired(at: now) }) {
                        foundDead.update { $0 = now }
                        dead.append([peer])
                    }
                }))
        box.update { $0 = router }
        defer { router.close() }

        let link = try DealerLink(
            context: context,
            configuration: .init(
                endpoint: router.boundEndpoints[0], routingID: bytes("w1"), heartbeat: policy,
                backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(100))),
            greeting: { [bytes("READY")] }, heartbeat: { [bytes("HB")] }, onMessage: { _ in })
        #expect(eventually { link.state == .connected })
        // Alive for several intervals: heartbeats keep it off the dead list.
        Thread.sleep(forTimeInterval: 0.15)
        #expect(dead.messages.isEmpty)
        #expect(table.get.isAlive(bytes("w1"), at: .now))

        let closedAt = ContinuousClock.now
        link.close()
        #expect(dead.wait(count: 1, timeout: .seconds(5)))
        let detectedAfter = ContinuousClock.now - closedAt
        #expect(dead.messages == [[bytes("w1")]])
        // Not before a full `deadAfter` of silence (measured from the last message heard: a heartbeat
        // sent late under load leaves more than an interval between it and the close).
        if let heard = lastHeard.get, let found = foundDead.get {
            #expect(found - heard > policy.deadAfter)
        } else {
            Issue.record("the router heard nothing or found nothing dead")
        }
        #expect(detectedAfter < .seconds(2))
    }

    /// The worker's side: a DEALER whose peer never answers gives up on its socket after K
    /// intervals, and keeps retrying with growing delays.
    @Test func dealerDetectsASilentPeerAndBacksOff() throws {
        let context = try ZMQContext()
        let heard = Inbox()
        // A ROUTER that listens but never answers.
        let router = try SocketLoop(
            context: context, configuration: .init(kind: .router, bind: [anyLoopbackPort]),
            handlers: .init(onMessage: { heard.append($0) }))
        defer { router.close() }

        let states = Locked<[DealerLink.State]>([])
        let link = try DealerLink(
            context: context,
            configuration: .init(
                endpoint: router.boundEndpoints[0], routingID: bytes("w2"), heartbeat: policy,
                backoff: Backoff(initial: .milliseconds(10), maximum: .milliseconds(40))),
            greeting: { [bytes("READY")] }, heartbeat: { [bytes("HB")] }, onMessage: { _ in },
            onStateChange: { state in states.update { $0.append(state) } })
        defer { link.close() }

        #expect(eventually { states.get.count >= 3 })
        let seen = states.get
        #expect(
            seen.prefix(3) == [
                .reconnecting(attempt: 1, delay: .milliseconds(10)),
                .reconnecting(attempt: 2, delay: .milliseconds(20)),
                .reconnecting(attempt: 3, delay: .milliseconds(40))
            ])
        // Each new socket greeted the ROUTER again, and heartbeats flowed in between.
        #expect(heard.wait { messages in messages.filter { $0[1] == bytes("READY") }.count >= 2 })
        #expect(heard.messages.contains { $0[1] == bytes("HB") })
    }

    /// The ROUTER goes away and comes back on the same port: the DEALER notices the silence,
    /// replaces its socket, greets the new ROUTER first and then delivers what was queued.
    @Test func dealerReconnectsAfterTheRouterIsRebound() throws {
        let context = try ZMQContext()
        let first = Inbox()
        let firstRouter = try echoRouter(context, bind: anyLoopbackPort, inbox: first)
        let endpoint = firstRouter.boundEndpoints[0]

        let link = try DealerLink(
            context: context,
            configuration: .init(
                endpoint: endpoint, routingID: bytes("w3"), heartbeat: policy,
                backoff: Backoff(initial: .milliseconds(10), maximum: .milliseconds(80))),
            greeting: { [bytes("READY")] }, heartbeat: { [bytes("HB")] }, onMessage: { _ in })
        defer { link.close() }
        #expect(eventually { link.state == .connected })
        #expect(first.messages.first == [bytes("w3"), bytes("READY")])

        firstRouter.close()
        #expect(
            eventually {
                if case .reconnecting = link.state { return true }
                return false
            })
        try link.send([bytes("queued while down")])

        // Rebinding can race the old listener's teardown inside libzmq: retry briefly.
        let second = Inbox()
        var secondRouter: SocketLoop?
        let rebound = eventually {
            secondRouter = try? echoRouter(context, bind: endpoint, inbox: second)
            return secondRouter != nil
        }
        #expect(rebound)
        defer { secondRouter?.close() }

        #expect(second.wait { $0.contains { $0[1] == bytes("queued while down") } })
        let payloads = second.messages.map { text($0[1]) }.filter { $0 != "HB" }
        #expect(payloads.prefix(2) == ["READY", "queued while down"])
        #expect(second.messages.allSatisfy { $0[0] == bytes("w3") })
        #expect(eventually { link.state == .connected })
    }
}

/// A ROUTER that records every message and echoes it back to its sender (a peer that answers
/// heartbeats).
private func echoRouter(_ context: ZMQContext, bind endpoint: String, inbox: Inbox) throws -> SocketLoop {
    let box = Locked<SocketLoop?>(nil)
    let loop = try SocketLoop(
        context: context, configuration: .init(kind: .router, bind: [endpoint]),
        handlers: .init(onMessage: { frames in
            inbox.append(frames)
            try? box.get?.send(frames)
        }))
    box.update { $0 = loop }
    return loop
}
