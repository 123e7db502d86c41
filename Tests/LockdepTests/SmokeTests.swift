import XCTest
@testable import Lockdep

final class SmokeTests: LockdepTestCase {
    func testABBAOnOneThread() {
        let a = CheckedMutex(class: .unique("A"))
        let b = CheckedMutex(class: .unique("B"))
        a.lock(); b.lock(); b.unlock(); a.unlock()
        expectSilent()
        b.lock(); a.lock(); a.unlock(); b.unlock()
        let r = expectOne(.circularDependency)
        print(r?.text ?? "")
    }
}
