// The Kotlin bindings on the JVM (JNA) against our real server: scripts/test-bindings.sh compiles this together with
// bindings/kotlin/ in one kotlinc call and runs it with COBRA_ENDPOINT/APPKEY/ROLE/SECRET set.
// Exit 0 only when every check passed; any failure prints FAIL and exits 1; a watchdog exits 3 if anything hangs.
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import kotlin.system.exitProcess
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import uniffi.cobra.*

const val WAIT_MS = 10_000L

fun check(cond: Boolean, msg: () -> String) {
    if (!cond) throw AssertionError(msg())
}

inline fun <reified E : CobraException> expect(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: CobraException) {
        if (e is E) return e
        throw AssertionError("$what: expected ${E::class.simpleName}, got ${e::class.simpleName}: ${e.message}")
    }
    throw AssertionError("$what: expected ${E::class.simpleName}, nothing was thrown")
}

/** Polls [cond] until it holds or the deadline passes (for state, which is not an event). */
fun eventually(what: String, cond: () -> Boolean) {
    val deadline = System.nanoTime() + WAIT_MS * 1_000_000
    while (!cond()) {
        if (System.nanoTime() > deadline) throw AssertionError("timed out waiting for $what")
        Thread.sleep(5)
    }
}

/** Records every event and the threads the callbacks ran on; waits on a condition, never on a fixed sleep. */
class Recorder : EventListener {
    private val lock = ReentrantLock()
    private val changed = lock.newCondition()
    private val events = ArrayList<Event>()
    val callbackThreads: MutableSet<Pair<Long, String>> = ConcurrentHashMap.newKeySet()

    override fun onEvent(event: Event) {
        val t = Thread.currentThread()
        callbackThreads.add(t.id to t.name)
        lock.withLock {
            events.add(event)
            changed.signalAll()
        }
    }

    fun <T> waitFor(what: String, f: (List<Event>) -> T?): T {
        val deadline = System.nanoTime() + WAIT_MS * 1_000_000
        lock.withLock {
            while (true) {
                f(events)?.let { return it }
                val left = (deadline - System.nanoTime()) / 1_000_000
                if (left <= 0) throw AssertionError("timed out waiting for $what; last events: ${events.takeLast(10)}")
                changed.await(left, TimeUnit.MILLISECONDS)
            }
        }
    }

    fun waitUntil(what: String, cond: (List<Event>) -> Boolean) = waitFor(what) { if (cond(it)) Unit else null }

    fun messages(events: List<Event>, subscriptionId: String): List<String> =
        events.filterIsInstance<Event.SubscriptionData>().filter { it.subscriptionId == subscriptionId }.flatMap { it.messages }
}

fun scenario() {
    val env = { k: String -> System.getenv(k) ?: throw AssertionError("environment variable $k is not set") }
    val endpoint = env("COBRA_ENDPOINT")
    val appkey = env("COBRA_APPKEY")
    val role = env("COBRA_ROLE")
    val secret = env("COBRA_SECRET")
    val mainThread = Thread.currentThread().id
    val suffix = java.lang.Long.toString(System.nanoTime(), 36)

    val logs = ConcurrentLinkedQueue<String>()
    setLogSink(logSink { level, target, message -> logs.add("$level $target $message") }, LogLevel.DEBUG)
    check(!initAndroidLogging(LogLevel.INFO)) { "initAndroidLogging must do nothing off Android" }

    // Errors surface as typed exceptions.
    val bad = expect<CobraException.InvalidConfig>("empty role") {
        CobraClient(ClientConfig(endpoint, appkey, "", secret), null)
    }
    check(bad.field == "role") { "InvalidConfig names the field: ${bad.field}" }
    expect<CobraException.InvalidConfig>("bad endpoint") {
        CobraClient(ClientConfig("http://nowhere", appkey, role, secret), null)
    }

    val rec = Recorder()
    CobraClient(ClientConfig(endpoint, appkey, role, secret), rec).use { client ->
        check(client.state() == ConnectionState.DISCONNECTED) { "initial state ${client.state()}" }
        expect<CobraException.InvalidArgument>("publish of text that is not JSON") { client.publish("c", "{nope") }
        expect<CobraException.InvalidArgument>("publish to an empty channel") { client.publish("", "{}") }
        expect<CobraException.InvalidArgument>("unsubscribe of an unknown id") { client.unsubscribe("nope") }

        client.connect()
        rec.waitUntil("authenticated") { ev -> ev.any { it is Event.Authenticated } }
        eventually("state CONNECTED") { client.state() == ConnectionState.CONNECTED }

        // Subscribe with a StreamSQL filter; exactly the matching messages arrive, in order.
        val chan = "kt_fps_$suffix"
        val sub = client.subscribe(chan, filter = "select data.fps from `$chan` where data.fps < 50")
        check(sub == chan) { "subscription id $sub" }
        rec.waitUntil("subscribed") { ev -> ev.any { it is Event.Subscribed && it.subscriptionId == sub } }
        val ids = (0 until 20).map { i -> client.publish(chan, """{"id":"$chan","data":{"fps":${i * 5}}}""") }
        val last = client.publish(chan, """{"data":{"fps":-1}}""")
        val want = (0 until 10).map { """{"data.fps":${it * 5}}""" } + """{"data.fps":-1}"""
        val got = rec.waitFor("the filtered messages") { ev ->
            rec.messages(ev, sub).takeIf { it.lastOrNull() == """{"data.fps":-1}""" }
        }
        check(got == want) { "filtered messages: got $got, want $want" }
        rec.waitUntil("21 publish acks") { ev ->
            ev.filterIsInstance<Event.Published>().map { it.id }.toSet().containsAll(ids + last)
        }
        check(client.pendingCount() == 0uL) { "pending ${client.pendingCount()}" }

        // An aggregate subscription (GROUP BY over windows): a fixed sequence with explicit timestamps, exact rows,
        // live and recomputed from history. Row keys are in alphabetical order (the SDK's JSON values do not keep
        // the broker's SELECT order, see the README). Minutes apart with a 2-minute grace: the arrival clock cannot
        // close a window during the test; the 12-minute event closes [0, 10 min), the 9-minute one after it is late.
        val achan = "kt_agg_$suffix"
        val sql = "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h " +
            "FROM `$achan` WHERE device.os_name = 'iOS' GROUP BY device.model " +
            "WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES"
        val asub = client.subscribe(achan, filter = sql, subscriptionId = "agg")
        rec.waitUntil("aggregate subscription") { ev -> ev.any { it is Event.Subscribed && it.subscriptionId == asub } }
        val minute = 60_000L
        for ((model, os, fps, ts) in listOf(
            listOf("iPhone", "iOS", 60, minute), listOf("iPad", "iOS", 30, 2 * minute), listOf("iPhone", "iOS", 59, 3 * minute),
            listOf("Pixel", "Android", 60, 4 * minute), listOf("iPhone", "iOS", 10, 9 * minute),
            listOf("iPad", "iOS", 7, 9 * minute + minute / 2), listOf("iPhone", "iOS", 60, 12 * minute),
            listOf("iPhone", "iOS", 60, 9 * minute), listOf("iPad", "iOS", 15, 23 * minute),
        )) {
            client.publish(achan, """{"id":"$achan","device":{"model":"$model","os_name":"$os"},"data":{"fps":$fps},"timestamp":$ts}""")
        }
        val rows = listOf(
            """{"count":3,"device.model":"iPhone","final":true,"fps":43,"h":{"counts":[0,2,0,0,1,0],"edges":[60,30,15,10,8],""" +
                """"shares":[0,0.6666666666666666,0,0,0.3333333333333333,0]},"late":0,"skipped":0,"window_end":600000,"window_start":0}""",
            """{"count":2,"device.model":"iPad","final":true,"fps":18.5,"h":{"counts":[0,0,1,0,0,1],"edges":[60,30,15,10,8],""" +
                """"shares":[0,0,0.5,0,0,0.5]},"late":0,"skipped":0,"window_end":600000,"window_start":0}""",
            """{"count":1,"device.model":"iPhone","final":true,"fps":60,"h":{"counts":[0,1,0,0,0,0],"edges":[60,30,15,10,8],""" +
                """"shares":[0,1,0,0,0,0]},"late":1,"skipped":0,"window_end":1200000,"window_start":600000}""",
        )
        val live = rec.waitFor("3 aggregate rows") { ev -> rec.messages(ev, asub).takeIf { it.size >= 3 } }
        check(live == rows) { "aggregate rows: got $live, want $rows" }
        val again = client.subscribe(achan, filter = sql, position = "0-0", subscriptionId = "agg_again")
        val recomputed = rec.waitFor("3 rows recomputed from history") { ev -> rec.messages(ev, again).takeIf { it.size >= 3 } }
        check(recomputed == rows) { "recomputed rows: got $recomputed, want $rows" }
        client.unsubscribe(asub)
        client.unsubscribe(again)

        // A filter the server refuses arrives as an event, not an exception.
        client.subscribe("kt_bad_$suffix", filter = "select from where", subscriptionId = "bad")
        val subErr = rec.waitFor("subscription error") { ev ->
            ev.filterIsInstance<Event.SubscriptionError>().firstOrNull { it.subscriptionId == "bad" }
        }
        check(subErr.reason.isNotEmpty()) { "subscription error without a reason" }

        // read / write / delete.
        val key = "kt_key_$suffix"
        check(client.read(key, 5.seconds) == null) { "fresh key not empty" }
        client.write(key, """{"a":[1,2],"b":"é"}""")
        check(client.read(key) == """{"a":[1,2],"b":"é"}""") { "read back ${client.read(key)}" }
        client.delete(key)
        check(client.read(key) == null) { "deleted key still there" }
        expect<CobraException.InvalidArgument>("write of text that is not JSON") { client.write(key, "nope") }

        // The metrics publisher: envelope, blacklist, disable, rate control, counters.
        val mchan = "kt_metrics_$suffix"
        val msub = client.subscribe(mchan)
        rec.waitUntil("metrics subscription") { ev -> ev.any { it is Event.Subscribed && it.subscriptionId == msub } }
        MetricsPublisher(client, mchan).use { m ->
            check(m.channel() == mchan && m.isEnabled()) { "metrics publisher state" }
            m.setSession("sess_$suffix")
            m.setDeviceAttribute("game", "\"kotlin-test\"")
            check(m.deviceAttributes() == """{"game":"kotlin-test"}""") { "attributes ${m.deviceAttributes()}" }
            val out = m.push("engine_fps_id", """{"fps":30}""")
            check(out is PushOutcome.Published) { "push: $out" }
            m.setBlacklist(listOf("banned_id"))
            check(m.push("banned_id", "{}") == PushOutcome.Blacklisted) { "blacklist" }
            m.setEnabled(false)
            check(m.push("engine_fps_id", "{}") == PushOutcome.Disabled) { "disabled" }
            m.setEnabled(true)
            m.setRateControl(mapOf("rl_id" to 3600.0))
            check(m.push("rl_id", "{}") is PushOutcome.Published) { "first rate-limited push" }
            check(m.push("rl_id", "{}") == PushOutcome.RateLimited) { "second rate-limited push" }
            expect<CobraException.InvalidArgument>("push of text that is not JSON") { m.push("x", "nope") }
            expect<CobraException.InvalidArgument>("attributes that are not an object") { m.setDeviceAttributes("[1]") }
            val stats = m.stats()
            check(stats == MetricsStats(published = 2uL, disabled = 1uL, blacklisted = 1uL, rateLimited = 1uL, failed = 0uL)) {
                "stats $stats"
            }
            val envelopes = rec.waitFor("2 metrics envelopes") { ev -> rec.messages(ev, msub).takeIf { it.size >= 2 } }
            val fps = envelopes.first { it.contains("\"engine_fps_id\"") }
            for (part in listOf("\"data\":{\"fps\":30}", "\"session\":\"sess_$suffix\"", "\"device\":{\"game\":\"kotlin-test\"}")) {
                check(fps.contains(part)) { "envelope $fps lacks $part" }
            }
        }

        // Lifecycle: suspend/resume and network changes reconnect, and the subscription resumes.
        fun authCount(ev: List<Event>) = ev.count { it is Event.Authenticated }
        val before = rec.waitFor("auth count") { authCount(it) }
        client.suspend()
        eventually("state SUSPENDED") { client.state() == ConnectionState.SUSPENDED }
        client.resume()
        rec.waitUntil("authenticated after resume") { authCount(it) > before }
        client.networkChanged()
        rec.waitUntil("authenticated after network change") { authCount(it) > before + 1 }
        client.publish(chan, """{"data":{"fps":1}}""")
        rec.waitUntil("a message after the reconnects") { ev -> rec.messages(ev, sub).contains("""{"data.fps":1}""") }
        check(rec.messages(rec.waitFor("events") { it.toList() }, sub).size == want.size + 1) { "duplicate or extra messages" }

        client.unsubscribe(sub)
        rec.waitUntil("unsubscribed") { ev -> ev.any { it is Event.Unsubscribed && it.subscriptionId == sub } }
        client.disconnect()
        eventually("state DISCONNECTED") { client.state() == ConnectionState.DISCONNECTED }
    }

    // Callbacks come from the SDK's engine thread, never the caller's.
    check(rec.callbackThreads.isNotEmpty() && rec.callbackThreads.none { it.first == mainThread }) {
        "callbacks on ${rec.callbackThreads}, main thread id $mainThread"
    }
    check(logs.any { it.contains("cobra") }) { "no SDK log record reached the LogSink" }

    // The helpers: CallbackListener splits batches and sorts events by kind.
    val seen = mutableListOf<String>()
    val cb = CallbackListener(onMessage = { s, json -> seen.add("$s:$json") }, onError = { seen.add("error") }, onOther = { seen.add("other") })
    cb.onEvent(Event.SubscriptionData("s", "1-1", listOf("1", "2")))
    cb.onEvent(Event.SubscriptionError("s", "code", "reason"))
    cb.onEvent(Event.Published(1uL))
    check(seen == listOf("s:1", "s:2", "error", "other")) { "CallbackListener dispatch: $seen" }

    // Bad credentials: an AUTHENTICATION_FAILED connection error (received through the bounded EventQueue helper),
    // and requests give up with an exception.
    val queue = EventQueue(capacity = 2)
    CobraClient(ClientConfig(endpoint, appkey, role, "wrong-secret", backoffMinMs = 50uL, backoffMaxMs = 100uL), queue).use { client ->
        client.connect()
        val deadline = System.nanoTime() + WAIT_MS * 1_000_000
        while (true) {
            val e = queue.poll(100.milliseconds)
            if (e is Event.ConnectionError && e.kind == ErrorKind.AUTHENTICATION_FAILED) break
            check(System.nanoTime() < deadline) { "timed out waiting for the authentication failure" }
        }
        // Not drained for a while: the queue stays at its capacity and counts what it dropped.
        eventually("EventQueue drops when full") { queue.dropped > 0 }
        check(queue.drain().size <= 2) { "EventQueue grew past its capacity" }
        // Which of two equal deadlines fires first is a race inside the SDK: the caller's wait (Timeout) or the
        // engine's "no connection before the timeout" (Cancelled). Either must be a typed exception, fast.
        val t0 = System.nanoTime()
        when (val t = expect<CobraException>("read without a session") { client.read("k", 300.milliseconds) }) {
            is CobraException.Timeout -> check(t.timeoutMs == 300uL) { "timeout ${t.timeoutMs}" }
            is CobraException.Cancelled -> {}
            else -> throw AssertionError("read without a session: expected Timeout or Cancelled, got $t")
        }
        check(System.nanoTime() - t0 < 5_000_000_000L) { "read did not give up in time" }
    }
    removeLogSink()
    println("kotlin: all checks passed (callbacks on ${rec.callbackThreads.size} JNA-attached threads, none the main one; ${logs.size} log records)")
}

fun main() {
    Thread {
        Thread.sleep(90_000)
        System.err.println("FAIL: kotlin test watchdog: hung for 90 s")
        Runtime.getRuntime().halt(3)
    }.apply { isDaemon = true }.start()
    try {
        scenario()
    } catch (e: Throwable) {
        System.err.println("FAIL: kotlin test: $e")
        e.printStackTrace()
        exitProcess(1)
    }
    exitProcess(0)
}
