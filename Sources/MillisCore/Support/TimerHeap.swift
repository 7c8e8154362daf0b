/// A binary min-heap of deadlines. Entries are never removed early: the owner checks
/// on expiry whether an entry is still current (lazy deletion), which keeps
/// rescheduling a push instead of a search.
struct TimerHeap<Element> {
    private var items: [(deadline: UInt64, element: Element)] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var earliest: UInt64? { items.first?.deadline }

    mutating func push(_ deadline: UInt64, _ element: Element) {
        items.append((deadline, element))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].deadline < items[parent].deadline else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: UInt64) -> (deadline: UInt64, element: Element)? {
        guard let first = items.first, first.deadline <= now else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < items.count && items[l].deadline < items[smallest].deadline { smallest = l }
                if r < items.count && items[r].deadline < items[smallest].deadline { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return first
    }
}
