/// liburcu's bp ("bulletproof") flavor: readers register themselves on their
/// first read lock and liburcu reclaims their slot when the thread exits, so it
/// is safe from threads the program does not own (callbacks from C libraries).
/// Readers cost one more pointer indirection than memb's.
public enum RCUBulletproof: RCUFlavor {}
