// NOT COMPILED HERE: no Swift compiler exists on the project's Linux machines (compiled on macOS by `swift build`).
//
// The SDK's logs into the unified logging system (Console.app, `log stream`). The Rust `oslog` crate cannot be used
// (it compiles C against the Apple SDK), so the SDK forwards `log` records through the `LogSink` foreign trait and
// this class calls `os_log`.
import Foundation
import os

/// A `LogSink` writing each SDK record to `os_log` (subsystem/category of your choice).
public final class OSLogSink: LogSink, @unchecked Sendable {
    private let osLog: OSLog

    public init(subsystem: String = "io.cobra.sdk", category: String = "cobra") {
        osLog = OSLog(subsystem: subsystem, category: category)
    }

    public func log(level: LogLevel, target: String, message: String) {
        let type: OSLogType
        switch level {
        case .error: type = .error
        case .warn: type = .default
        case .info: type = .info
        case .debug, .trace: type = .debug
        }
        // Public: the SDK never logs secrets (the server address and channel names are not secret).
        os_log("%{public}@: %{public}@", log: osLog, type: type, target, message)
    }

    /// Routes the SDK's logs up to `level` to `os_log`. Call once, early (e.g. in `App.init`).
    public static func install(level: LogLevel = .info, subsystem: String = "io.cobra.sdk") throws {
        try setLogSink(sink: OSLogSink(subsystem: subsystem), maxLevel: level)
    }
}
