import Models

/// Image features (LLaVA's feature rows, Llama 3.2 Vision's cross-attention states) by content
/// hash, least recently used dropped first: an image is encoded once per job on a worker, not once
/// per candidate or judge call.
struct ImageFeatureCache<Features> {
    let capacity: Int
    private var entries: [(hash: String, features: Features)] = []

    init(capacity: Int) { self.capacity = capacity }

    mutating func lookup(_ hash: String) -> Features? {
        guard let index = entries.firstIndex(where: { $0.hash == hash }) else { return nil }
        let entry = entries.remove(at: index)
        entries.append(entry)
        return entry.features
    }

    mutating func insert(_ features: Features, for hash: String) {
        guard capacity > 0 else { return }
        entries.removeAll { $0.hash == hash }
        entries.append((hash, features))
        if entries.count > capacity { entries.removeFirst() }
    }
}
