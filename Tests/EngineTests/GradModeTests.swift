import Engine
import Foundation
import XCTest

/// Gradient mode is per thread: switching it off in one thread leaves every other thread recording.
final class GradModeTests: XCTestCase {
    func testGradModeIsPerThread() {
        let x = Tensor([1, 2, 3], shape: [3]).requiringGrad()
        final class Seen: @unchecked Sendable { var enabled = false, recorded = false }
        let seen = Seen()
        withoutGrad {
            XCTAssertFalse(GradMode.isEnabled)
            XCTAssertFalse((x * 2).requiresGrad, "no recording inside withoutGrad")
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                seen.enabled = GradMode.isEnabled
                seen.recorded = (x * 2).requiresGrad
                done.signal()
            }
            thread.start()
            done.wait()
        }
        XCTAssertTrue(seen.enabled, "another thread starts with recording on")
        XCTAssertTrue(seen.recorded, "and records while this thread does not")
        XCTAssertTrue(GradMode.isEnabled, "withoutGrad restores the setting")
        XCTAssertEqual(gradients(of: (x * x).sum(), wrt: [x])[0].scalars, [2, 4, 6])
    }
}
