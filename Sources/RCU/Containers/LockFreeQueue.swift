import CURCUCDS

/// A multi-producer, multi-consumer FIFO queue over liburcu-cds's RCU
/// lock-free queue (`rculfqueue`): both ends are lock-free.
///
/// Enqueue and dequeue are compare-and-swap loops run inside a read section of
/// `Flavor`; a dequeued node is freed a grace period later (liburcu's
/// `call_rcu`), because concurrent consumers may still be reading it. Unlike
/// ``WaitFreeQueue``, consumers never wait for each other.
///
/// ```swift
/// let events = LockFreeQueue<Event, RCUMemb>()
/// events.enqueue(event)
/// if let next = events.dequeue() { handle(next) }
/// ```
public final class LockFreeQueue<Element: Sendable, Flavor: RCUFlavor> {
    /// `struct cds_lfq_queue_rcu *`, at a stable address.
    private let queue: UnsafeMutablePointer<cds_lfq_queue_rcu>

    private final class Box {
        let element: Element
        init(_ element: consuming Element) { self.element = element }
    }

    /// Creates an empty queue.
    public init() {
        queue = curcu_lfq_new(Flavor.flavorDescription.operations.pointee.call_rcu_head)
    }

    deinit {
        while dequeue() != nil {}
        let freed = curcu_lfq_free(queue)
        precondition(freed, "cds_lfq_destroy_rcu: queue not empty")
    }

    /// Appends `element` at the tail.
    /// - Parameter element: The element to enqueue.
    /// - Complexity: O(1) amortised, lock-free (plus one allocation and a read section).
    public func enqueue(_ element: consuming Element) {
        let box = Unmanaged.passRetained(Box(element)).toOpaque()
        Flavor.read { _ in curcu_lfq_push(queue, box) }
    }

    /// Removes and returns the element at the head, or `nil` when the queue is empty.
    /// - Returns: The oldest element, or `nil`.
    /// - Complexity: O(1) amortised, lock-free (plus a call_rcu enqueue).
    public func dequeue() -> Element? {
        let box: UnsafeMutableRawPointer? = Flavor.read { _ in
            guard let item = curcu_lfq_pop(queue) else { return nil }
            let box = curcu_lfq_item_box(item)
            Flavor.throttledCall(LockFreeQueueSupport.freeItem, UnsafeMutableRawPointer(item), call: "LockFreeQueue.dequeue()")
            return box
        }
        Flavor.throttleAfterReadSection(call: "LockFreeQueue.dequeue()")
        guard let box else { return nil }
        return Unmanaged<Box>.fromOpaque(box).takeRetainedValue().element
    }
}

extension LockFreeQueue: @unchecked Sendable {}

enum LockFreeQueueSupport {
    /// The call_rcu callback that frees a dequeued node.
    static let freeItem: RCUCallbackFunction = { context in
        curcu_lfq_item_free(context)
    }
}
