internal import CLockdepThread

/// The package's `fork()` handlers, run as one group at a fixed place among liburcu's
/// (`CLockdepFork.h` says why): every package type whose lock another thread may hold at a
/// `fork()` registers here, never with `pthread_atfork` directly.
///
/// Order: liburcu's prepare hooks pause the call_rcu workers before any prepare here takes a
/// lock, and every child hook here has made its lock new before liburcu's child hook starts
/// the child's workers, whose first callback may take one of them. Within the group, prepare
/// hooks run in reverse registration order and child hooks in registration order, so a lock
/// taken under another (Lockdep's graph lock, under everything) registers first.
///
/// A child hook must run only code the parent has already run: rehearse it once when
/// registering (on a spare object, or the prepare hook runs the same path). The Swift runtime
/// fills its caches (generic metadata, witness tables) under locks of its own, which a parent
/// thread may hold at the fork: a child that needs a new entry waits for ever (seen: a child
/// hook's first `for batch in all` hung in `swift_getWitnessTable`).
///
/// `package` access: shared by the package's modules, not part of any product.
package enum ForkHooks {
    /// Adds a triple: `prepare` runs in the forking thread before the fork (take the lock, so
    /// what it guards is whole), `parent` after it in the parent (release it), `child` in the
    /// child's only thread (make the lock new: the error-checking mutex is owned by the
    /// parent-side thread id, and a thread that held it may not exist there).
    package static func register(prepare: (@convention(c) () -> Void)?, parent: (@convention(c) () -> Void)?,
                                 child: (@convention(c) () -> Void)?) {
        installLockdepHooks()
        clockdep_fork_register(prepare, parent, child)
    }

    /// Runs `body`, the first use of a one-time initializer (a `static let`) that may wait for
    /// a lock this group's prepare hooks take (creating a Lockdep class takes the graph lock),
    /// so that no `fork()` is made while it is in progress: a child would wait for ever in the
    /// initializer's once, for a thread it does not have. A fork waits for it before any hook
    /// here takes its lock, and it waits for a fork being prepared.
    ///
    /// Not generic: a generic call instantiates its type argument's metadata before the
    /// bracket opens, under a lock of the runtime's metadata cache (for `[LockdepMap]`, the
    /// Array cache's), and a fork meanwhile would copy that lock held into a child that may
    /// need it. A value is made with ``makeOnce(_:_:)``.
    package static func initializing(_ body: () -> Void) {
        clockdep_fork_initializer_begin()
        defer { clockdep_fork_initializer_end() }
        body()
    }

    /// Makes the one-time value of `slot` (a `CLOCKDEP_ONCE_` slot of `CLockdepFork.h`) inside
    /// the bracket of ``initializing(_:)`` and publishes its address there, for an accessor whose every later
    /// use is one load of the slot:
    ///
    /// ```swift
    /// let raw = clockdep_fork_once_value(SLOT) ?? ForkHooks.makeOnce(SLOT) { made }
    /// ```
    ///
    /// `make` reads a `static let` (`made`) whose initializer registers the value's fork hooks
    /// and returns its address (an object retained for good, a buffer never freed): its once
    /// makes it once however many threads race here, and no fork is made while one of them is
    /// inside it. Use it for every one-time value whose initializer registers a fork hook or
    /// may wait for a lock a prepare hook takes: a hook registered inside an unbracketed
    /// initializer misses a fork being prepared meanwhile (``register(prepare:parent:child:)``
    /// skips triples not yet complete), so that fork neither takes the new lock nor makes it
    /// new in the child, which inherits it held by a thread it does not have.
    ///
    /// Not generic, and the bracket opened directly, so that nothing is instantiated before it
    /// (see ``initializing(_:)``): the generic types `made` uses are instantiated inside it.
    @inline(never)
    package static func makeOnce(_ slot: Int32, _ make: () -> UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        clockdep_fork_initializer_begin()
        defer { clockdep_fork_initializer_end() }
        let made = make()
        clockdep_fork_once_publish(slot, made)
        return made
    }

    /// Lockdep's graph and statistics locks: any package code may call into the validator
    /// while holding its own lock, so they register before every other triple (their prepare
    /// runs last, their child hook first). Registered with the graph, when it is made.
    static func installLockdepHooks() { _ = graph }

    /// Registers Lockdep's triple; called once, by the graph's initializer (inside the bracket).
    static func registerLockdepHooks() {
        clockdep_fork_register(
            // The symbol tables' lock is taken inside the graph lock (reports name their frames).
            { Engine.statistics.lock.lock(); graph.lock.lock(); ElfSymbols.loaded.lock.lock() },
            { ElfSymbols.loaded.lock.unlock(); graph.lock.unlock(); Engine.statistics.lock.unlock() },
            { graph.lock.reinitializeInForkedChild(); Engine.statistics.lock.reinitializeInForkedChild()
              ElfSymbols.loaded.lock.reinitializeInForkedChild() })
    }
}
