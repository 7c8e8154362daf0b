import Synchronization

/// The speaker's "the answer has finished sounding" flag, between the playback thread,
/// which announces a drain (or takes it back when audio comes before the network loop
/// saw it), and the network loop, which takes it to turn the agent idle.
///
/// The loop takes a drain only while the playout queue is empty. Audio queued after the
/// announcement (the loop was held up, by a slow callback say, while the answer went on
/// arriving) means the answer had a gap, not an end: the flag stays for the playback
/// thread to withdraw, and that gap is counted as an underrun. Taken by the loop, the
/// same gap would be lost, and the agent would go idle in the middle of its answer.
final class PlayoutDrain: Sendable {
    private let pending = Atomic<Bool>(false)

    /// Playback thread: the answer has finished sounding.
    func announce() {
        pending.store(true, ordering: .releasing)
    }

    /// Playback thread: audio came while idle. True when the drain had not been taken:
    /// to the listener, the answer had a gap.
    func withdraw() -> Bool {
        pending.exchange(false, ordering: .acquiringAndReleasing)
    }

    /// Network loop: true once per drain, and only while `queueIsEmpty` (the loop is the
    /// queue's only writer, so it cannot fill between the caller's look and this).
    func take(queueIsEmpty: Bool) -> Bool {
        queueIsEmpty && pending.exchange(false, ordering: .acquiringAndReleasing)
    }
}
