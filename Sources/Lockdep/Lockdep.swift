/// Lockdep: a lock-order, context and RCU-usage validator (work in progress).
public enum Lockdep {}
