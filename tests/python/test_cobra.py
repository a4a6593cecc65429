"""The uniffi Python bindings against our real server: the same scenario as tests/kotlin/Main.kt.

Run by scripts/test-bindings.sh:  python3 tests/python/test_cobra.py DIR   (DIR holds the generated cobra.py and
libcobra.so) with COBRA_ENDPOINT/APPKEY/ROLE/SECRET set. Exit 0 only when every check passed; a watchdog kills the
process (exit 3) if anything hangs.
"""

import os
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import cobra  # noqa: E402  (generated; path set above)

WAIT_S = 10.0


def watchdog():
    time.sleep(90)
    print("FAIL: python test watchdog: hung for 90 s", file=sys.stderr, flush=True)
    os._exit(3)


class Recorder(cobra.EventListener):
    """Records every event and the threads the callbacks ran on; waits on a condition, never a fixed sleep."""

    def __init__(self):
        self.cond = threading.Condition()
        self.events = []
        self.threads = set()

    def on_event(self, event):
        self.threads.add((threading.get_ident(), threading.current_thread().name))
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, what, f):
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                got = f(self.events)
                if got is not None and got is not False:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; last events: {[str(e) for e in self.events[-10:]]}")
                self.cond.wait(left)

    @staticmethod
    def messages(events, sub):
        return [m for e in events if isinstance(e, cobra.Event.SUBSCRIPTION_DATA) and e.subscription_id == sub
                for m in e.messages]


class Logs(cobra.LogSink):
    def __init__(self):
        self.records = []

    def log(self, level, target, message):
        self.records.append((level, target, message))


def expect(exc_type, what, f):
    try:
        f()
    except cobra.CobraError as e:
        if isinstance(e, exc_type):
            return e
        raise AssertionError(f"{what}: expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"{what}: expected {exc_type.__name__}, nothing was raised")


def eventually(what, cond):
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def scenario():
    endpoint, appkey, role, secret = (os.environ[k] for k in
                                      ("COBRA_ENDPOINT", "COBRA_APPKEY", "COBRA_ROLE", "COBRA_SECRET"))
    main_thread = threading.get_ident()
    suffix = format(time.time_ns(), "x")

    logs = Logs()
    cobra.set_log_sink(logs, cobra.LogLevel.DEBUG)
    assert cobra.init_android_logging(cobra.LogLevel.INFO) is False, "init_android_logging must do nothing off Android"

    def config(**kw):
        return cobra.ClientConfig(**{"endpoint": endpoint, "appkey": appkey, "role": role, "secret": secret, **kw})

    bad = expect(cobra.CobraError.InvalidConfig, "empty role", lambda: cobra.CobraClient(config(role=""), None))
    assert bad.field == "role", bad.field
    expect(cobra.CobraError.InvalidConfig, "bad endpoint",
           lambda: cobra.CobraClient(config(endpoint="http://nowhere"), None))

    rec = Recorder()
    client = cobra.CobraClient(config(), rec)
    assert client.state() == cobra.ConnectionState.DISCONNECTED, client.state()
    expect(cobra.CobraError.InvalidArgument, "publish of text that is not JSON", lambda: client.publish("c", "{nope"))
    expect(cobra.CobraError.InvalidArgument, "publish to an empty channel", lambda: client.publish("", "{}"))
    expect(cobra.CobraError.InvalidArgument, "unsubscribe of an unknown id", lambda: client.unsubscribe("nope"))

    client.connect()
    rec.wait_for("authenticated", lambda ev: any(isinstance(e, cobra.Event.AUTHENTICATED) for e in ev))
    eventually("state CONNECTED", lambda: client.state() == cobra.ConnectionState.CONNECTED)

    # Subscribe with a StreamSQL filter: exactly the matching messages arrive, in order.
    chan = f"py_fps_{suffix}"
    sub = client.subscribe(cobra.SubscribeOptions(channel=chan,
                                                  filter=f"select data.fps from `{chan}` where data.fps < 50"))
    assert sub == chan, sub
    rec.wait_for("subscribed", lambda ev: any(isinstance(e, cobra.Event.SUBSCRIBED) and e.subscription_id == sub
                                              for e in ev))
    ids = [client.publish(chan, f'{{"id":"{chan}","data":{{"fps":{i * 5}}}}}') for i in range(20)]
    ids.append(client.publish(chan, '{"data":{"fps":-1}}'))
    want = [f'{{"data.fps":{i * 5}}}' for i in range(10)] + ['{"data.fps":-1}']
    got = rec.wait_for("the filtered messages",
                       lambda ev: (lambda m: m if m and m[-1] == '{"data.fps":-1}' else None)(rec.messages(ev, sub)))
    assert got == want, f"filtered messages: got {got}, want {want}"
    rec.wait_for("21 publish acks",
                 lambda ev: set(ids) <= {e.id for e in ev if isinstance(e, cobra.Event.PUBLISHED)})
    assert client.pending_count() == 0, client.pending_count()

    # A filter the server refuses arrives as an event, not an exception.
    client.subscribe(cobra.SubscribeOptions(channel=f"py_bad_{suffix}", filter="select from where",
                                            subscription_id="bad"))
    err = rec.wait_for("subscription error", lambda ev: next(
        (e for e in ev if isinstance(e, cobra.Event.SUBSCRIPTION_ERROR) and e.subscription_id == "bad"), None))
    assert err.reason, "subscription error without a reason"

    # read / write / delete.
    key = f"py_key_{suffix}"
    assert client.read(key, 5000) is None, "fresh key not empty"
    client.write(key, '{"a":[1,2],"b":"é"}', 5000)
    assert client.read(key, 5000) == '{"a":[1,2],"b":"é"}', client.read(key, 5000)
    client.delete(key, 5000)
    assert client.read(key, 5000) is None, "deleted key still there"
    expect(cobra.CobraError.InvalidArgument, "write of text that is not JSON", lambda: client.write(key, "nope", 5000))

    # The metrics publisher: envelope, blacklist, disable, rate control, counters.
    mchan = f"py_metrics_{suffix}"
    msub = client.subscribe(cobra.SubscribeOptions(channel=mchan))
    rec.wait_for("metrics subscription",
                 lambda ev: any(isinstance(e, cobra.Event.SUBSCRIBED) and e.subscription_id == msub for e in ev))
    m = cobra.MetricsPublisher(client, mchan)
    assert m.channel() == mchan and m.is_enabled()
    m.set_session(f"sess_{suffix}")
    m.set_device_attribute("game", '"python-test"')
    assert m.device_attributes() == '{"game":"python-test"}', m.device_attributes()
    out = m.push("engine_fps_id", '{"fps":30}')
    assert isinstance(out, cobra.PushOutcome.PUBLISHED), out
    m.set_blacklist(["banned_id"])
    assert isinstance(m.push("banned_id", "{}"), cobra.PushOutcome.BLACKLISTED)
    m.set_enabled(False)
    assert isinstance(m.push("engine_fps_id", "{}"), cobra.PushOutcome.DISABLED)
    m.set_enabled(True)
    m.set_rate_control({"rl_id": 3600.0})
    assert isinstance(m.push("rl_id", "{}"), cobra.PushOutcome.PUBLISHED)
    assert isinstance(m.push("rl_id", "{}"), cobra.PushOutcome.RATE_LIMITED)
    expect(cobra.CobraError.InvalidArgument, "push of text that is not JSON", lambda: m.push("x", "nope"))
    expect(cobra.CobraError.InvalidArgument, "attributes that are not an object", lambda: m.set_device_attributes("[1]"))
    assert m.stats() == cobra.MetricsStats(published=2, disabled=1, blacklisted=1, rate_limited=1, failed=0), m.stats()
    envelopes = rec.wait_for("2 metrics envelopes", lambda ev: (lambda x: x if len(x) >= 2 else None)(rec.messages(ev, msub)))
    fps = next(e for e in envelopes if '"engine_fps_id"' in e)
    for part in ('"data":{"fps":30}', f'"session":"sess_{suffix}"', '"device":{"game":"python-test"}'):
        assert part in fps, f"envelope {fps} lacks {part}"
    del m

    # Lifecycle: suspend/resume and network changes reconnect, and the subscription resumes.
    def auth_count(ev):
        return sum(isinstance(e, cobra.Event.AUTHENTICATED) for e in ev)
    before = rec.wait_for("auth count", auth_count)
    client.suspend()
    eventually("state SUSPENDED", lambda: client.state() == cobra.ConnectionState.SUSPENDED)
    client.resume()
    rec.wait_for("authenticated after resume", lambda ev: auth_count(ev) > before)
    client.network_changed()
    rec.wait_for("authenticated after network change", lambda ev: auth_count(ev) > before + 1)
    client.publish(chan, '{"data":{"fps":1}}')
    rec.wait_for("a message after the reconnects", lambda ev: '{"data.fps":1}' in rec.messages(ev, sub))
    with rec.cond:
        assert len(rec.messages(rec.events, sub)) == len(want) + 1, "duplicate or extra messages"

    client.unsubscribe(sub)
    rec.wait_for("unsubscribed", lambda ev: any(isinstance(e, cobra.Event.UNSUBSCRIBED) and e.subscription_id == sub
                                                for e in ev))
    client.disconnect()
    eventually("state DISCONNECTED", lambda: client.state() == cobra.ConnectionState.DISCONNECTED)
    del client

    # Callbacks come from the SDK's engine thread, never the caller's.
    assert rec.threads and all(t[0] != main_thread for t in rec.threads), (rec.threads, main_thread)
    assert any("cobra" in r[1] for r in logs.records), "no SDK log record reached the LogSink"

    # Bad credentials: an AUTHENTICATION_FAILED connection error, and requests time out as an exception.
    rec2 = Recorder()
    bad_client = cobra.CobraClient(config(secret="wrong-secret"), rec2)
    bad_client.connect()
    rec2.wait_for("authentication failure", lambda ev: any(
        isinstance(e, cobra.Event.CONNECTION_ERROR) and e.kind == cobra.ErrorKind.AUTHENTICATION_FAILED for e in ev))
    # Which of two equal deadlines fires first is a race inside the SDK: the caller's wait (Timeout) or the
    # engine's "no connection before the timeout" (Cancelled). Either must be a typed exception, fast.
    t0 = time.monotonic()
    t = expect(cobra.CobraError, "read without a session", lambda: bad_client.read("k", 300))
    assert isinstance(t, (cobra.CobraError.Timeout, cobra.CobraError.Cancelled)), repr(t)
    if isinstance(t, cobra.CobraError.Timeout):
        assert t.timeout_ms == 300, t.timeout_ms
    assert time.monotonic() - t0 < 5, "read did not give up in time"
    bad_client.disconnect()
    del bad_client
    cobra.remove_log_sink()
    print(f"python: all checks passed (callback threads: {sorted({t[1] for t in rec.threads})}, "
          f"{len(logs.records)} log records)")


if __name__ == "__main__":
    threading.Thread(target=watchdog, daemon=True).start()
    try:
        scenario()
    except Exception as e:  # noqa: BLE001 (report any failure, then exit non-zero)
        import traceback
        traceback.print_exc()
        print(f"FAIL: python test: {e!r}", file=sys.stderr, flush=True)
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)
