// NOT COMPILED ON THE PROJECT'S LINUX CI (no Android SDK there); built by Gradle in android/.
package io.cobra.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import uniffi.cobra.CobraClient
import uniffi.cobra.CobraException

/**
 * Default-network changes (Wi-Fi <-> cellular, back online) -> [CobraClient.networkChanged]: the old socket is often
 * dead without an error yet; `networkChanged` drops it and reconnects at once, skipping any backoff delay.
 * Needs `ACCESS_NETWORK_STATE` (declared in this library's manifest) and API 24.
 *
 *     val connectivity = CobraConnectivity(context, client).also { it.start() }
 *     ...
 *     connectivity.stop()
 */
class CobraConnectivity(context: Context, private val client: CobraClient) {
    private val connectivity = context.getSystemService(ConnectivityManager::class.java)
    private val lock = Any()
    private var current: Network? = null
    private var transports: Set<Int> = emptySet()
    private var seen = false
    private var started = false

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) = changed(network, transports(network))

        override fun onCapabilitiesChanged(network: Network, caps: NetworkCapabilities) =
            changed(network, transportsOf(caps))

        override fun onLost(network: Network) {
            synchronized(lock) { if (network == current) current = null }
        }
    }

    private fun transports(network: Network): Set<Int> =
        connectivity.getNetworkCapabilities(network)?.let(::transportsOf) ?: emptySet()

    private fun transportsOf(caps: NetworkCapabilities): Set<Int> =
        listOf(
            NetworkCapabilities.TRANSPORT_WIFI, NetworkCapabilities.TRANSPORT_CELLULAR,
            NetworkCapabilities.TRANSPORT_ETHERNET, NetworkCapabilities.TRANSPORT_VPN,
        ).filter(caps::hasTransport).toSet()

    private fun changed(network: Network, now: Set<Int>) {
        val notify = synchronized(lock) {
            // Android reports the current default network right after registration: that first one is not a change.
            val differs = seen && (network != current || now != transports)
            current = network
            transports = now
            seen = true
            differs
        }
        if (notify) {
            try {
                client.networkChanged()
            } catch (_: CobraException) {
                // Only Shutdown can happen (the client was freed).
            }
        }
    }

    /** Starts listening to default-network changes. */
    fun start() = synchronized(lock) {
        if (started) return
        started = true
        connectivity.registerDefaultNetworkCallback(callback)
    }

    /** Stops listening. */
    fun stop() = synchronized(lock) {
        if (!started) return
        started = false
        connectivity.unregisterNetworkCallback(callback)
    }
}
