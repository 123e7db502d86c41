import CURCUCDS

/// A multi-producer, multi-consumer FIFO queue over liburcu's wait-free
/// concurrent queue (`wfcqueue`).
///
/// Enqueueing is wait-free (an atomic exchange on the tail and a store), so
/// producers never wait for each other or for consumers. Consumers serialise
/// on the queue's internal dequeue lock and may briefly spin for a producer
/// that is between its two steps. ``splice(from:)`` moves a whole queue's
/// contents in O(1).
///
/// The queue needs no RCU read sections and no flavor: consumers own what they
/// dequeue outright (nodes are never shared with readers).
///
/// ```swift
/// let work = WaitFreeQueue<Job>()
/// work.enqueue(job)                         // any thread, wait-free
/// while let job = work.dequeue() { job.run() }
/// ```
public final class WaitFreeQueue<Element> {
    /// The C queue (head with its dequeue lock, tail) at a stable address.
    private let queue: UnsafeMutablePointer<curcu_wfcq>

    private final class Box {
        let element: Element
        init(_ element: consuming Element) { self.element = element }
    }

    /// Creates an empty queue.
    public init() {
        queue = curcu_wfcq_new()
    }

    deinit {
        while dequeue() != nil {}
        curcu_wfcq_free(queue)
    }

    /// Appends `element` at the tail.
    /// - Parameter element: The element to enqueue.
    /// - Complexity: O(1), wait-free (plus one allocation).
    public func enqueue(_ element: consuming Element) {
        curcu_wfcq_push(queue, Unmanaged.passRetained(Box(element)).toOpaque())
    }

    /// Removes and returns the element at the head, or `nil` when the queue is empty.
    ///
    /// Takes the queue's dequeue lock (consumers are serialised); never waits
    /// for an empty queue to fill.
    /// - Returns: The oldest element, or `nil`.
    /// - Complexity: O(1).
    public func dequeue() -> Element? {
        guard let raw = curcu_wfcq_pop(queue) else { return nil }
        return Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().element
    }

    /// Moves every element of `source` to the tail of this queue, in order,
    /// leaving `source` empty (`cds_wfcq_splice_blocking`).
    ///
    /// Producers may keep enqueueing to either queue meanwhile; elements
    /// enqueued to `source` after the splice stay there.
    /// - Parameter source: Another queue (splicing a queue into itself does nothing).
    /// - Complexity: O(1).
    public func splice(from source: WaitFreeQueue<Element>) {
        guard source !== self else { return }
        curcu_wfcq_splice(queue, source.queue)
    }

    /// Whether the queue is empty (a snapshot).
    /// - Complexity: O(1).
    public var isEmpty: Bool { curcu_wfcq_is_empty(queue) }
}

extension WaitFreeQueue: @unchecked Sendable where Element: Sendable {}
