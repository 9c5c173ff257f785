import Distillation
import Engine
import XCTest

/// A run keeps of each teacher's outputs only the maps its method declares
/// (`DistillationMethod.teacherMaps`); every method's regular-step loss and gradients must be the
/// same bits as with every map kept, so a method that reads a map it did not declare fails here
/// (or traps on the missing map) instead of losing a term.
final class TeacherMapsTests: XCTestCase {
    typealias Fixture = DistillationFixtureTests.Fixture

    /// Loss and learner gradients of the regular step with the teachers keeping `maps`.
    static func regular(_ objective: MultiTeacherObjective, _ f: Fixture, keeping maps: TeacherOutputs.Maps) -> (Float, [[Float]]) {
        objective.learner.train()
        let x = f.x.slice(axis: 0, 0..<8), y = Array(f.y[0..<8])
        let outputs = objective.teachers.map { $0.outputs(x, keeping: maps) }
        let terms = objective.terms(images: x, labels: y, teacherOutputs: outputs, part: .full(epoch: 1), indices: Array(0..<8))
        return (terms.total.item, gradients(of: terms.total, wrt: objective.learner.namedParameters.map(\.1)).map(\.scalars))
    }

    func testEveryMethodReadsOnlyTheMapsItDeclares() throws {
        for method in DistillationMethods.all {
            // A fresh objective for each side: some methods' terms change their state (CRD's memories).
            let runs = try [TeacherOutputs.Maps.all, method.teacherMaps(DistillationHyperparameters(method: method))].map { maps in
                let f = try Fixture()
                return Self.regular(try DataParallelObjectiveTests.objective(method: method.name, f), f, keeping: maps)
            }
            XCTAssertEqual(runs[1].0, runs[0].0, "\(method.name): loss with only its declared maps kept")
            let differing = zip(runs[1].1, runs[0].1).filter { $0.0 != $0.1 }.count
            XCTAssertEqual(differing, 0, "\(method.name): gradients of \(differing) parameters differ with only its declared maps kept")
        }
    }

    func testTheDeclaredMaps() {
        let maps = Dictionary(uniqueKeysWithValues: DistillationMethods.all.map { m in
            (m.name, m.teacherMaps(DistillationHyperparameters(method: m)))
        })
        XCTAssertEqual(maps["mmkd"], [])
        XCTAssertEqual(maps["fitnet"], .hint)
        XCTAssertEqual(maps["at"], .stages)
        XCTAssertEqual(maps["vid"], .stages)
    }
}
