/// liburcu's qsbr flavor (quiescent-state-based reclamation): the cheapest read
/// side, in exchange for readers that announce quiescent states.
///
/// Generic read sections (``RCUFlavor/read(fileID:line:_:)``) are safe anywhere: a
/// thread that is not online is brought online for the outermost section and
/// taken offline after it, so it can never stall a grace period (its sections
/// then cost about what ``RCUMemoryBarrier``'s do). A thread that reads in a hot
/// loop opens a reader scope, ``RCUFlavor/withReader(fileID:line:_:)``: the thread
/// stays online for the scope, its sections cost a thread-local counter, and it
/// must call ``RCUReader/quiescentState(fileID:line:)`` between them. A reader that
/// forgets stalls every grace period: ``RCUStallDetector`` names it instead of
/// letting the call_rcu backlog grow silently. When the scope ends the thread
/// goes offline again (if the scope brought it online).
public enum RCUQSBR: RCUFlavor {}
