// NOT COMPILED HERE: no Swift compiler exists on the project's Linux machines (compiled on macOS by `swift build`).
//
// Network path changes -> network_changed: when the device moves between Wi-Fi, cellular and wired, or comes back
// online, the old socket is often dead without any error yet; `networkChanged()` drops it and reconnects at once,
// skipping the backoff delay.
import Foundation
import Network

/// Watches `NWPathMonitor` and calls `networkChanged()` on `client` when a usable path appears or changes.
public final class CobraPathMonitor: @unchecked Sendable {
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "io.cobra.path-monitor")
    private weak var client: CobraClient?
    private var last: String?   // signature of the last path; nil before the first update

    public init(client: CobraClient) { self.client = client }

    public func start() {
        monitor.pathUpdateHandler = { [weak self] path in self?.update(path) }
        monitor.start(queue: queue)
    }

    public func stop() { monitor.cancel() }

    deinit { monitor.cancel() }

    /// Status plus the interface types in use: changes when Wi-Fi <-> cellular, or online <-> offline.
    private static func signature(_ path: NWPath) -> String {
        let kinds: [(NWInterface.InterfaceType, String)] =
            [(.wifi, "wifi"), (.cellular, "cell"), (.wiredEthernet, "wired"), (.other, "other")]
        let used = kinds.filter { path.usesInterfaceType($0.0) }.map { $0.1 }
        return "\(path.status)|" + used.joined(separator: ",") + "|" + path.availableInterfaces.map { $0.name }.joined(separator: ",")
    }

    private func update(_ path: NWPath) {   // on `queue`, serially
        let sig = Self.signature(path)
        defer { last = sig }
        // The first update only reports the current path; afterwards, act on a change that leaves us online.
        guard let previous = last, previous != sig, path.status == .satisfied else { return }
        try? client?.networkChanged()
    }
}
