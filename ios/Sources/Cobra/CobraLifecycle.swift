// NOT COMPILED HERE: no Swift compiler exists on the project's Linux machines (compiled on macOS by `swift build`).
//
// App lifecycle -> suspend/resume: in the background iOS freezes the app within seconds, so the SDK closes its socket
// cleanly (`suspend`, publishes keep queueing, on disk too with a spool) and reconnects at once on return (`resume`).
import Foundation
#if canImport(SwiftUI)
import SwiftUI
#endif

/// Maps scene phases to `suspend()` / `resume()`. It resumes only a client it suspended itself, so a client the
/// app disconnected on purpose stays disconnected.
public final class CobraLifecycle: @unchecked Sendable {
    private let client: CobraClient
    private let lock = NSLock()
    private var suspendedByUs = false

    public init(client: CobraClient) { self.client = client }

    /// The app went to the background.
    public func didEnterBackground() {
        lock.lock(); defer { lock.unlock() }
        let state = client.state()
        guard state != .disconnected, state != .suspended, state != .stopped else { return }
        if (try? client.suspend()) != nil { suspendedByUs = true }
    }

    /// The app is active again.
    public func didBecomeActive() {
        lock.lock(); defer { lock.unlock() }
        guard suspendedByUs else { return }
        suspendedByUs = false
        try? client.resume()
    }

    #if canImport(SwiftUI)
    /// Feed SwiftUI's scene phase: `.onChange(of: scenePhase) { lifecycle.scenePhaseChanged($0) }`.
    @available(iOS 14.0, macOS 11.0, *)
    public func scenePhaseChanged(_ phase: ScenePhase) {
        switch phase {
        case .background: didEnterBackground()
        case .active: didBecomeActive()
        default: break   // .inactive: transient (control center, app switcher); keep the connection
        }
    }
    #endif
}

#if canImport(SwiftUI)
@available(iOS 14.0, macOS 11.0, *)
private struct CobraLifecycleModifier: ViewModifier {
    @Environment(\.scenePhase) private var scenePhase
    let lifecycle: CobraLifecycle

    func body(content: Content) -> some View {
        content.onChange(of: scenePhase) { lifecycle.scenePhaseChanged($0) }
    }
}

@available(iOS 14.0, macOS 11.0, *)
public extension View {
    /// Suspends `client` in the background and resumes it when the scene is active: `ContentView().cobraLifecycle(client)`.
    func cobraLifecycle(_ client: CobraClient) -> some View {
        modifier(CobraLifecycleModifier(lifecycle: CobraLifecycle(client: client)))
    }
}
#endif
