/// How often peers heartbeat and when silence means death (the ZeroMQ guide's "Paranoid Pirate"
/// rule: a peer is dead after `missedLimit` intervals without hearing anything from it).
public struct HeartbeatPolicy: Sendable, Equatable {
    public var interval: Duration
    public var missedLimit: Int

    public init(interval: Duration, missedLimit: Int = 3) {
        precondition(interval > .zero, "heartbeat interval must be positive")
        precondition(missedLimit >= 1, "missedLimit must be at least 1")
        self.interval = interval
        self.missedLimit = missedLimit
    }

    /// Silence longer than this means the peer is dead.
    public var deadAfter: Duration { interval * missedLimit }

    public func isExpired(lastHeard: ContinuousClock.Instant, now: ContinuousClock.Instant) -> Bool {
        now - lastHeard > deadAfter
    }
}

/// When each known peer was last heard from; finds the ones that went silent.
/// Any message counts as a sign of life, not only heartbeats. Times come from the monotonic
/// `ContinuousClock`, passed in so the table is deterministic to test.
public struct PeerLiveness<Peer: Hashable> {
    public let policy: HeartbeatPolicy
    private var lastHeard: [Peer: ContinuousClock.Instant] = [:]

    public init(policy: HeartbeatPolicy) {
        self.policy = policy
    }

    /// Records a sign of life; a new peer becomes known.
    public mutating func heard(_ peer: Peer, at now: ContinuousClock.Instant) {
        lastHeard[peer] = now
    }

    /// Forgets a peer (e.g. after it said goodbye).
    public mutating func forget(_ peer: Peer) {
        lastHeard[peer] = nil
    }

    public func isAlive(_ peer: Peer, at now: ContinuousClock.Instant) -> Bool {
        guard let last = lastHeard[peer] else { return false }
        return !policy.isExpired(lastHeard: last, now: now)
    }

    /// Removes and returns the peers silent for longer than the policy allows.
    public mutating func removeExpired(at now: ContinuousClock.Instant) -> [Peer] {
        let dead = lastHeard.filter { policy.isExpired(lastHeard: $0.value, now: now) }.map(\.key)
        for peer in dead { lastHeard[peer] = nil }
        return dead
    }

    /// The peers currently known (alive or not yet found silent).
    public var peers: [Peer] { Array(lastHeard.keys) }
}

extension PeerLiveness: Sendable where Peer: Sendable {}

/// When to send the next heartbeat: every `interval`, without bursts after a stall.
public struct HeartbeatSchedule: Sendable {
    public let interval: Duration
    public private(set) var nextDue: ContinuousClock.Instant

    /// The first beat is due at `start` (send one at once on connecting).
    public init(interval: Duration, start: ContinuousClock.Instant) {
        self.interval = interval
        self.nextDue = start
    }

    /// True when a heartbeat is due at `now`; then the next one is due an interval from `now`.
    public mutating func isDue(at now: ContinuousClock.Instant) -> Bool {
        guard now >= nextDue else { return false }
        nextDue = now + interval
        return true
    }
}
