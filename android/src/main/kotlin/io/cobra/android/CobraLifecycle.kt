// NOT COMPILED ON THE PROJECT'S LINUX CI (no Android SDK there); built by Gradle in android/.
package io.cobra.android

import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import uniffi.cobra.CobraClient
import uniffi.cobra.CobraException
import uniffi.cobra.ConnectionState

/**
 * App background/foreground -> [CobraClient.suspend]/[CobraClient.resume], through [ProcessLifecycleOwner] (the
 * whole process, not one Activity: rotating the screen or switching activities does not drop the connection).
 * In the background Android may freeze or kill the app; `suspend` closes the socket cleanly while publishes keep
 * queueing (on disk too when a spool is configured), and `resume` reconnects at once.
 *
 * Only a client this helper suspended is resumed, so a client the app disconnected on purpose stays disconnected.
 *
 *     val lifecycle = CobraLifecycle(client).also { it.install() }   // on the main thread, e.g. Application.onCreate
 */
class CobraLifecycle(private val client: CobraClient) : DefaultLifecycleObserver {
    @Volatile private var suspendedByUs = false

    /** Starts observing the process lifecycle. Call on the main thread. */
    fun install() = ProcessLifecycleOwner.get().lifecycle.addObserver(this)

    /** Stops observing. Call on the main thread. */
    fun uninstall() = ProcessLifecycleOwner.get().lifecycle.removeObserver(this)

    override fun onStop(owner: LifecycleOwner) {
        val state = client.state()
        if (state == ConnectionState.DISCONNECTED || state == ConnectionState.SUSPENDED || state == ConnectionState.STOPPED) return
        try {
            client.suspend()
            suspendedByUs = true
        } catch (_: CobraException) {
            // Only Shutdown can happen (the client was freed): nothing to suspend.
        }
    }

    override fun onStart(owner: LifecycleOwner) {
        if (!suspendedByUs) return
        suspendedByUs = false
        try {
            client.resume()
        } catch (_: CobraException) {
        }
    }
}
