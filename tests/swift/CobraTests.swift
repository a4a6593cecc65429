// The Swift bindings against our real server: the same scenario as tests/kotlin/Main.kt and tests/python/test_cobra.py.
//
// NOT COMPILED OR RUN ON THE PROJECT'S LINUX MACHINES: no Swift compiler exists there (not in Debian, PyPI or npm).
// Written for a macOS CI job: ios/build-xcframework.sh stages this file into ios/Tests/CobraTests/, then
// `cd ios && swift test` with COBRA_ENDPOINT/APPKEY/ROLE/SECRET set (see ios/README.md). Until then the behaviour it
// checks is covered by the Kotlin and Python tests of the same Rust API (scripts/test-bindings.sh).
import Foundation
import XCTest
@testable import Cobra

private let waitSeconds: TimeInterval = 10

/// Records every event and the threads the callbacks ran on; waits on a condition, never on a fixed sleep.
final class Recorder: EventListener, @unchecked Sendable {
    private let cond = NSCondition()
    private var events: [Event] = []
    private(set) var callbackOnMainThread = false
    private(set) var callbacks = 0

    func onEvent(event: Event) {
        cond.lock()
        if Thread.isMainThread { callbackOnMainThread = true }
        callbacks += 1
        events.append(event)
        cond.broadcast()
        cond.unlock()
    }

    @discardableResult
    func waitFor<T>(_ what: String, _ f: ([Event]) -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(waitSeconds)
        cond.lock(); defer { cond.unlock() }
        while true {
            if let got = f(events) { return got }
            if !cond.wait(until: deadline) {
                if let got = f(events) { return got }
                throw WaitTimeout(description: "timed out waiting for \(what); last events: \(events.suffix(10))")
            }
        }
    }

    func waitUntil(_ what: String, _ cond: ([Event]) -> Bool) throws {
        try waitFor(what) { cond($0) ? true : nil }
    }

    static func messages(_ events: [Event], _ sub: String) -> [String] {
        events.flatMap { e -> [String] in
            if case let .subscriptionData(id, _, messages) = e, id == sub { return messages }
            return []
        }
    }
}

struct WaitTimeout: Error, CustomStringConvertible { let description: String }

final class LogRecords: LogSink, @unchecked Sendable {
    private let lock = NSLock()
    private var records: [(LogLevel, String, String)] = []
    func log(level: LogLevel, target: String, message: String) {
        lock.lock(); records.append((level, target, message)); lock.unlock()
    }
    var targets: [String] { lock.lock(); defer { lock.unlock() }; return records.map { $0.1 } }
}

func eventually(_ what: String, _ cond: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(waitSeconds)
    while !cond() {
        if Date() > deadline { throw WaitTimeout(description: "timed out waiting for \(what)") }
        Thread.sleep(forTimeInterval: 0.005)
    }
}

final class CobraTests: XCTestCase {
    var endpoint = "", appkey = "", role = "", secret = ""

    override func setUpWithError() throws {
        let env = ProcessInfo.processInfo.environment
        guard let e = env["COBRA_ENDPOINT"], let a = env["COBRA_APPKEY"], let r = env["COBRA_ROLE"],
              let s = env["COBRA_SECRET"] else {
            // Fail rather than skip under CI, so a misconfigured job cannot pass silently.
            if env["CI"] == "true" { XCTFail("COBRA_ENDPOINT/APPKEY/ROLE/SECRET not set"); return }
            throw XCTSkip("COBRA_ENDPOINT/APPKEY/ROLE/SECRET not set (see ios/README.md)")
        }
        (endpoint, appkey, role, secret) = (e, a, r, s)
    }

    func testScenario() throws {
        let suffix = String(UInt64(Date().timeIntervalSince1970 * 1e6), radix: 36)
        let logs = LogRecords()
        try setLogSink(sink: logs, maxLevel: .debug)
        XCTAssertFalse(initAndroidLogging(maxLevel: .info))

        // Errors surface as typed Swift errors.
        XCTAssertThrowsError(try CobraClient(endpoint: endpoint, appkey: appkey, role: "", secret: secret)) { error in
            guard case let CobraError.InvalidConfig(field, _) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(field, "role")
        }

        let rec = Recorder()
        let client = try CobraClient(endpoint: endpoint, appkey: appkey, role: role, secret: secret, listener: rec)
        XCTAssertEqual(client.state(), .disconnected)
        XCTAssertThrowsError(try client.publish(channel: "c", json: "{nope")) { error in
            guard case CobraError.InvalidArgument = error else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try client.unsubscribe(subscriptionId: "nope"))

        try client.connect()
        try rec.waitUntil("authenticated") { $0.contains(.authenticated) }
        try eventually("state connected") { client.state() == .connected }

        // Subscribe with a StreamSQL filter: exactly the matching messages arrive, in order.
        let chan = "swift_fps_\(suffix)"
        let sub = try client.subscribe(chan, filter: "select data.fps from `\(chan)` where data.fps < 50")
        XCTAssertEqual(sub, chan)
        try rec.waitUntil("subscribed") { $0.contains { if case let .subscribed(id, _) = $0 { return id == sub }; return false } }
        var ids: [UInt64] = []
        for i in 0..<20 { ids.append(try client.publish(chan, ["id": chan, "data": ["fps": i * 5]])) }
        ids.append(try client.publish(chan, ["data": ["fps": -1]]))
        let want = (0..<10).map { "{\"data.fps\":\($0 * 5)}" } + ["{\"data.fps\":-1}"]
        let got = try rec.waitFor("the filtered messages") { ev -> [String]? in
            let m = Recorder.messages(ev, sub); return m.last == "{\"data.fps\":-1}" ? m : nil
        }
        XCTAssertEqual(got, want)
        try rec.waitUntil("21 acks") { ev in
            let acked = Set(ev.compactMap { e -> UInt64? in if case let .published(id) = e { return id }; return nil })
            return Set(ids).isSubset(of: acked)
        }

        // An aggregate subscription (GROUP BY over windows): a fixed sequence with explicit timestamps, exact rows,
        // live and recomputed from history (the same check as tests/kotlin/Main.kt). Row keys are in alphabetical
        // order (the SDK's JSON values do not keep the broker's SELECT order, see the README).
        let achan = "swift_agg_\(suffix)"
        let sql = "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h " +
            "FROM `\(achan)` WHERE device.os_name = 'iOS' GROUP BY device.model " +
            "WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES"
        let asub = try client.subscribe(achan, filter: sql, subscriptionId: "agg")
        try rec.waitUntil("aggregate subscription") { $0.contains { if case let .subscribed(id, _) = $0 { return id == asub }; return false } }
        let minute = 60_000
        let sequence: [(String, String, Int, Int)] = [
            ("iPhone", "iOS", 60, minute), ("iPad", "iOS", 30, 2 * minute), ("iPhone", "iOS", 59, 3 * minute),
            ("Pixel", "Android", 60, 4 * minute), ("iPhone", "iOS", 10, 9 * minute), ("iPad", "iOS", 7, 9 * minute + minute / 2),
            ("iPhone", "iOS", 60, 12 * minute), ("iPhone", "iOS", 60, 9 * minute), ("iPad", "iOS", 15, 23 * minute),
        ]
        for (model, os, fps, ts) in sequence {
            try client.publish(channel: achan, json: "{\"id\":\"\(achan)\",\"device\":{\"model\":\"\(model)\",\"os_name\":\"\(os)\"},\"data\":{\"fps\":\(fps)},\"timestamp\":\(ts)}")
        }
        let rows = [
            #"{"count":3,"device.model":"iPhone","final":true,"fps":43,"h":{"counts":[0,2,0,0,1,0],"edges":[60,30,15,10,8],"shares":[0,0.6666666666666666,0,0,0.3333333333333333,0]},"late":0,"skipped":0,"window_end":600000,"window_start":0}"#,
            #"{"count":2,"device.model":"iPad","final":true,"fps":18.5,"h":{"counts":[0,0,1,0,0,1],"edges":[60,30,15,10,8],"shares":[0,0,0.5,0,0,0.5]},"late":0,"skipped":0,"window_end":600000,"window_start":0}"#,
            #"{"count":1,"device.model":"iPhone","final":true,"fps":60,"h":{"counts":[0,1,0,0,0,0],"edges":[60,30,15,10,8],"shares":[0,1,0,0,0,0]},"late":1,"skipped":0,"window_end":1200000,"window_start":600000}"#,
        ]
        let live = try rec.waitFor("3 aggregate rows") { ev -> [String]? in
            let m = Recorder.messages(ev, asub); return m.count >= 3 ? m : nil
        }
        XCTAssertEqual(live, rows)
        let again = try client.subscribe(achan, filter: sql, position: "0-0", subscriptionId: "agg_again")
        let recomputed = try rec.waitFor("3 rows recomputed from history") { ev -> [String]? in
            let m = Recorder.messages(ev, again); return m.count >= 3 ? m : nil
        }
        XCTAssertEqual(recomputed, rows)
        try client.unsubscribe(subscriptionId: asub)
        try client.unsubscribe(subscriptionId: again)

        // read / write / delete.
        let key = "swift_key_\(suffix)"
        XCTAssertNil(try client.read(key, timeout: 5))
        try client.write(key, json: "{\"a\":[1,2]}")
        XCTAssertEqual(try client.read(key), "{\"a\":[1,2]}")
        try client.delete(key)
        XCTAssertNil(try client.read(key))

        // The metrics publisher.
        let mchan = "swift_metrics_\(suffix)"
        let msub = try client.subscribe(mchan)
        try rec.waitUntil("metrics subscription") { $0.contains { if case let .subscribed(id, _) = $0 { return id == msub }; return false } }
        let metrics = MetricsPublisher(client: client, channel: mchan)
        metrics.setSession(session: "sess_\(suffix)")
        try metrics.setDeviceAttribute(name: "game", valueJson: "\"swift-test\"")
        guard case .published = try metrics.push("engine_fps_id", ["fps": 30]) else { return XCTFail("push not published") }
        metrics.setBlacklist(ids: ["banned_id"])
        XCTAssertEqual(try metrics.push(id: "banned_id", dataJson: "{}"), .blacklisted)
        metrics.setEnabled(enabled: false)
        XCTAssertEqual(try metrics.push(id: "engine_fps_id", dataJson: "{}"), .disabled)
        metrics.setEnabled(enabled: true)
        XCTAssertEqual(metrics.stats(), MetricsStats(published: 1, disabled: 1, blacklisted: 1, rateLimited: 0, failed: 0))
        let envelope = try rec.waitFor("metrics envelope") { Recorder.messages($0, msub).first }
        for part in ["\"data\":{\"fps\":30}", "\"session\":\"sess_\(suffix)\"", "\"device\":{\"game\":\"swift-test\"}"] {
            XCTAssertTrue(envelope.contains(part), "envelope \(envelope) lacks \(part)")
        }

        // Lifecycle helpers drive suspend/resume; network changes reconnect.
        func authCount(_ ev: [Event]) -> Int { ev.filter { $0 == .authenticated }.count }
        let before = try rec.waitFor("auth count") { authCount($0) }
        let lifecycle = CobraLifecycle(client: client)
        lifecycle.didEnterBackground()
        try eventually("state suspended") { client.state() == .suspended }
        lifecycle.didBecomeActive()
        try rec.waitUntil("authenticated after resume") { authCount($0) > before }
        try client.networkChanged()
        try rec.waitUntil("authenticated after network change") { authCount($0) > before + 1 }
        try client.publish(chan, ["data": ["fps": 1]])
        try rec.waitUntil("a message after the reconnects") { Recorder.messages($0, sub).contains("{\"data.fps\":1}") }

        try client.unsubscribe(subscriptionId: sub)
        try rec.waitUntil("unsubscribed") { $0.contains(.unsubscribed(subscriptionId: sub)) }
        try client.disconnect()
        try eventually("state disconnected") { client.state() == .disconnected }

        // Callbacks come from the SDK's engine thread, never the main thread.
        XCTAssertGreaterThan(rec.callbacks, 0)
        XCTAssertFalse(rec.callbackOnMainThread)
        XCTAssertTrue(logs.targets.contains { $0.hasPrefix("cobra") }, "no SDK log record reached the LogSink")

        // Bad credentials: an authenticationFailed connection error; requests give up with a typed error.
        let rec2 = Recorder()
        let bad = try CobraClient(endpoint: endpoint, appkey: appkey, role: role, secret: "wrong-secret", listener: rec2)
        try bad.connect()
        try rec2.waitUntil("authentication failure") { $0.contains {
            if case let .connectionError(kind, _, _, _) = $0 { return kind == .authenticationFailed }; return false
        } }
        XCTAssertThrowsError(try bad.read("k", timeout: 0.3)) { error in
            switch error {
            case CobraError.Timeout, CobraError.Cancelled: break   // two equal deadlines race inside the SDK
            default: XCTFail("got \(error)")
            }
        }
        try bad.disconnect()
        removeLogSink()
    }
}
