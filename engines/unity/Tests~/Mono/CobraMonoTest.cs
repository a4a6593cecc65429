// The Unity package's Runtime, exercised on Mono against a real `cobra run` (scripts/test-engines.sh builds it
// with mcs together with Runtime/*.cs and runs it with mono; libcobra.so is found through LD_LIBRARY_PATH).
//
// Environment: COBRA_ENDPOINT, COBRA_APPKEY, COBRA_ROLE, COBRA_SECRET (scripts/server-for-c.sh writes them) and
// COBRA_TEST_RESTART_CMD, a shell command that restarts the server on the same port.
// Exit status 0 when every check passed; the first failed check prints FAIL and exits 1.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Cobra;

internal static class CobraMonoTest
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>Counts a client's events; waits on them without fixed sleeps.</summary>
    private sealed class Recorder
    {
        private readonly object gate = new object();
        private readonly Dictionary<CobraEventKind, int> counts = new Dictionary<CobraEventKind, int>();
        public readonly List<string> Messages = new List<string>();
        public readonly HashSet<ulong> Acked = new HashSet<ulong>();
        public readonly HashSet<int> HandlerThreads = new HashSet<int>();

        public void OnEvent(CobraEvent e)
        {
            lock (gate)
            {
                HandlerThreads.Add(Thread.CurrentThread.ManagedThreadId);
                int n;
                counts.TryGetValue(e.Kind, out n);
                counts[e.Kind] = n + 1;
                if (e.Kind == CobraEventKind.SubscriptionData)
                {
                    Messages.AddRange(e.Messages);
                }
                if (e.Kind == CobraEventKind.Published)
                {
                    Acked.Add(e.PublishId);
                }
                Monitor.PulseAll(gate);
            }
        }

        public int Count(CobraEventKind kind)
        {
            lock (gate)
            {
                int n;
                counts.TryGetValue(kind, out n);
                return n;
            }
        }

        /// <summary>Waits until <paramref name="done"/> holds (checked under the lock); false on timeout.</summary>
        public bool WaitUntil(Func<bool> done)
        {
            DateTime deadline = DateTime.UtcNow + Patience;
            lock (gate)
            {
                while (!done())
                {
                    TimeSpan left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero)
                    {
                        return false;
                    }
                    Monitor.Wait(gate, left);
                }
                return true;
            }
        }

        public bool WaitCount(CobraEventKind kind, int atLeast)
        {
            return WaitUntil(() =>
            {
                int n;
                counts.TryGetValue(kind, out n);
                return n >= atLeast;
            });
        }

        public List<string> MessagesSnapshot()
        {
            lock (gate)
            {
                return new List<string>(Messages);
            }
        }
    }

    private static int checks;

    private static void Check(bool ok, string what)
    {
        checks++;
        if (!ok)
        {
            Console.WriteLine("FAIL: " + what);
            Console.Out.Flush();
            Environment.Exit(1);
        }
    }

    private static void Section(string name)
    {
        Console.WriteLine("-- " + name);
    }

    private static string Env(string name)
    {
        string v = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrEmpty(v))
        {
            Console.WriteLine("FAIL: environment variable " + name + " is not set");
            Environment.Exit(1);
        }
        return v;
    }

    private static CobraOptions Options()
    {
        return new CobraOptions
        {
            Endpoint = Env("COBRA_ENDPOINT"),
            AppKey = Env("COBRA_APPKEY"),
            Role = Env("COBRA_ROLE"),
            Secret = Env("COBRA_SECRET"),
            BackoffMinMs = 50,
            BackoffMaxMs = 500,
            UserAgent = "cobra-unity-mono-test",
        };
    }

    private static string Unique(string prefix)
    {
        return prefix + "_" + Process.GetCurrentProcess().Id + "_" + Guid.NewGuid().ToString("N").Substring(0, 8);
    }

    /// <summary>Polls the state (no event reports every state change) until it is <paramref name="wanted"/>.</summary>
    private static bool WaitState(CobraClient client, CobraClientState wanted)
    {
        DateTime deadline = DateTime.UtcNow + Patience;
        while (client.State != wanted)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            Thread.Sleep(10);
        }
        return true;
    }

    private static void CollectGarbage()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    private static void ExpectHandles(long clients, long metrics, string when)
    {
        CobraHandleCounts c = CobraLibrary.LiveHandles();
        Check(c.Configs == 0 && c.Clients == clients && c.Metrics == metrics,
            string.Format("live handles {0}: {1}, expected clients={2} metrics={3}", when, c, clients, metrics));
    }

    // Creates a client and drops it without Dispose: only the finalizer can free it.
    private static void Abandon()
    {
        CobraClient forgotten = new CobraClient(Options(), e => { });
        forgotten.Connect();
    }

    private static int Main()
    {
        Stopwatch total = Stopwatch.StartNew();
        Console.WriteLine("cobra Unity runtime on Mono " + Type.GetType("Mono.Runtime") + ", libcobra " + CobraLibrary.Version);
        Check(!string.IsNullOrEmpty(CobraLibrary.Version), "a version");
        ExpectHandles(0, 0, "at start");
        int logRecords = 0;
        CobraLibrary.SetLogHandler(CobraLogLevel.Info, (level, target, message) => Interlocked.Increment(ref logRecords));
        List<Exception> callbackErrors = new List<Exception>();
        CobraLibrary.CallbackError += ex => { lock (callbackErrors) { callbackErrors.Add(ex); } };

        Section("bad options are clear errors, and leak nothing");
        try
        {
            new CobraClient(new CobraOptions { AppKey = "a", Role = "r", Secret = "s" });
            Check(false, "a missing endpoint is refused");
        }
        catch (ArgumentException)
        {
        }
        CobraOptions bad = Options();
        bad.Endpoint = "http://not-a-websocket";
        try
        {
            new CobraClient(bad);
            Check(false, "an http:// endpoint is refused");
        }
        catch (CobraException ex)
        {
            Check(ex.Status == CobraStatus.Config, "an http:// endpoint gives CobraStatus.Config, got " + ex.Status);
        }
        ExpectHandles(0, 0, "after refused options");

        Section("connect");
        Recorder rec = new Recorder();
        CobraClient client = new CobraClient(Options(), rec.OnEvent);
        ExpectHandles(1, 0, "with one client");
        Check(client.State == CobraClientState.Disconnected, "disconnected before Connect");
        client.Connect();
        Check(rec.WaitCount(CobraEventKind.Authenticated, 1), "authenticated");
        Check(client.State == CobraClientState.Connected, "state Connected, got " + client.State);
        Check(rec.HandlerThreads.All(id => id != Thread.CurrentThread.ManagedThreadId), "events arrive on the engine thread");

        Section("publish and a StreamSQL-filtered subscription");
        string channel = Unique("unity_test");
        string filter = "select data.fps as fps, kind from `" + channel + "` where data.fps < 30 or kind = 'sentinel'";
        client.Subscribe(channel, "filtered", filter);
        try
        {
            client.Subscribe(channel, "filtered");
            Check(false, "a duplicate subscription id is refused");
        }
        catch (CobraException ex)
        {
            Check(ex.Status == CobraStatus.InvalidArgument, "duplicate id: InvalidArgument, got " + ex.Status);
        }
        Check(rec.WaitCount(CobraEventKind.Subscribed, 1), "subscribed");
        List<ulong> ids = new List<ulong>();
        for (int fps = 0; fps < 100; fps += 10)
        {
            ids.Add(client.Publish(channel, "{\"kind\":\"frame\",\"data\":{\"fps\":" + fps + "}}"));
        }
        ids.Add(client.Publish(channel, "{\"kind\":\"sentinel\",\"note\":\"h\u00e9llo \u2713\"}"));
        Check(rec.WaitUntil(() => rec.Messages.Any(m => m.Contains("sentinel"))), "the sentinel arrives");
        List<string> got = rec.MessagesSnapshot();
        Check(got.Count == 4, "exactly 4 messages pass the filter, got " + got.Count + ": " + string.Join(" ", got.ToArray()));
        for (int fps = 0; fps < 30; fps += 10)
        {
            Check(got.Count(m => m.Contains("\"fps\":" + fps + ",") || m.Contains("\"fps\":" + fps + "}")) == 1, "fps " + fps + " once");
        }
        Check(!got.Any(m => m.Contains("\"fps\":3") || m.Contains("\"fps\":9")), "no frame of 30 fps or more");
        Check(rec.WaitUntil(() => ids.All(rec.Acked.Contains)), "every publish acknowledged");
        Check(ids.Distinct().Count() == ids.Count, "distinct publish ids");
        try
        {
            client.Publish(channel, "{not json");
            Check(false, "invalid JSON is refused");
        }
        catch (CobraException ex)
        {
            Check(ex.Status == CobraStatus.InvalidArgument && ex.Message.Contains("JSON"), "invalid JSON: " + ex.Message);
        }

        Section("write / read / request");
        string key = channel + "_kv";
        client.Write(key, "{\"answer\":42}");
        Check(client.Read(key) == "{\"answer\":42}", "read back what was written");
        client.Delete(key);
        Check(client.Read(key) == null, "a deleted key reads as null");
        Check(client.Request("admin/get_connections", "{}").Contains("\"connections\""), "admin/get_connections");

        Section("8 threads publishing");
        const int threads = 8, perThread = 200;
        ulong[][] perThreadIds = new ulong[threads][];
        Thread[] workers = new Thread[threads];
        string concurrent = Unique("unity_concurrent");
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            workers[t] = new Thread(() =>
            {
                perThreadIds[index] = new ulong[perThread];
                for (int i = 0; i < perThread; i++)
                {
                    perThreadIds[index][i] = client.Publish(concurrent, "{\"thread\":" + index + ",\"i\":" + i + "}");
                }
            });
            workers[t].Start();
        }
        foreach (Thread w in workers)
        {
            w.Join();
        }
        List<ulong> all = perThreadIds.SelectMany(a => a).ToList();
        Check(all.Count == threads * perThread && all.Distinct().Count() == all.Count, "1600 publishes with distinct ids");
        Check(rec.WaitUntil(() => all.All(rec.Acked.Contains)), "all 1600 acknowledged");

        Section("server restart: the client reconnects and the subscription resumes");
        string restart = Env("COBRA_TEST_RESTART_CMD");
        int authBefore = rec.Count(CobraEventKind.Authenticated);
        int subscribedBefore = rec.Count(CobraEventKind.Subscribed);
        Process p = Process.Start(new ProcessStartInfo("bash", "-c \"" + restart.Replace("\"", "\\\"") + "\"") { UseShellExecute = false });
        p.WaitForExit();
        Check(p.ExitCode == 0, "restart command succeeded: " + restart);
        Check(rec.WaitCount(CobraEventKind.Closed, 1), "the drop is reported");
        Check(rec.WaitCount(CobraEventKind.Authenticated, authBefore + 1), "authenticated again");
        Check(rec.WaitCount(CobraEventKind.Subscribed, subscribedBefore + 1), "re-subscribed");
        client.Publish(channel, "{\"kind\":\"frame\",\"data\":{\"fps\":25}}");
        Check(rec.WaitUntil(() => rec.Messages.Any(m => m.Contains("\"fps\":25"))), "delivery resumes after the restart");
        Check(Interlocked.CompareExchange(ref logRecords, 0, 0) > 0, "libcobra logged through the log handler");

        Section("suspend / resume");
        authBefore = rec.Count(CobraEventKind.Authenticated);
        int closedBefore = rec.Count(CobraEventKind.Closed);
        client.Suspend();
        Check(rec.WaitCount(CobraEventKind.Closed, closedBefore + 1), "Suspend closes the connection");
        Check(WaitState(client, CobraClientState.Suspended), "suspended, got " + client.State);
        ulong queued = client.Publish(channel, "{\"kind\":\"frame\",\"data\":{\"fps\":15}}");
        client.Resume();
        Check(rec.WaitCount(CobraEventKind.Authenticated, authBefore + 1), "authenticated after Resume");
        Check(rec.WaitUntil(() => rec.Acked.Contains(queued)), "a publish queued while suspended is delivered after Resume");

        Section("metrics publisher");
        string fpsId = channel + "_fps";
        int subscribed = rec.Count(CobraEventKind.Subscribed);
        client.Subscribe(fpsId, "metrics", "select id, session, device.game, data.fps from `" + fpsId + "`");
        Check(rec.WaitCount(CobraEventKind.Subscribed, subscribed + 1), "metrics subscription");
        using (CobraMetrics metrics = client.CreateMetrics("unity_test_metrics"))
        {
            ExpectHandles(1, 1, "with a metrics publisher");
            metrics.Session = "unity-session";
            Check(metrics.Session == "unity-session", "session round trip");
            metrics.SetDeviceAttributes("{\"game\":\"unity-demo\",\"os_name\":\"Linux\"}");
            Check(metrics.Push(fpsId, "{\"fps\":42}") == CobraPushOutcome.Published, "pushed");
            metrics.SetBlacklist(fpsId);
            Check(metrics.Push(fpsId, "{\"fps\":1}") == CobraPushOutcome.Blacklisted, "blacklisted");
            metrics.SetBlacklist();
            metrics.SetEnabled(false);
            Check(metrics.Push(fpsId, "{\"fps\":2}") == CobraPushOutcome.Disabled, "disabled");
            metrics.SetEnabled(true);
            metrics.SetRateControl(new Dictionary<string, double> { { fpsId, 3600.0 } });
            Check(metrics.Push(fpsId, "{\"fps\":44}") == CobraPushOutcome.RateLimited, "rate limited (the last event was just now)");
            metrics.SetRateControl(new Dictionary<string, double>());
            ulong publishId;
            Check(metrics.Push(fpsId, "{\"fps\":43}", out publishId) == CobraPushOutcome.Published && publishId != 0, "published once the limit is removed");
            CobraMetricsStats stats = metrics.Stats;
            Check(stats.Published == 2 && stats.Blacklisted == 1 && stats.Disabled == 1 && stats.RateLimited == 1,
                string.Format("stats {0}/{1}/{2}/{3}", stats.Published, stats.Blacklisted, stats.Disabled, stats.RateLimited));
            Check(rec.WaitUntil(() => rec.Messages.Any(m => m.Contains("\"data.fps\":43"))), "the second event arrives");
            string envelope = rec.MessagesSnapshot().First(m => m.Contains("\"data.fps\":42"));
            Check(envelope.Contains("\"session\":\"unity-session\"") && envelope.Contains("\"device.game\":\"unity-demo\""),
                "envelope with session and device: " + envelope);
        }
        ExpectHandles(1, 0, "after disposing the metrics publisher");

        Section("main-thread dispatcher: handlers run only where it is drained");
        MainThreadDispatcher dispatcher = new MainThreadDispatcher(capacity: 100000);
        Recorder onMain = new Recorder();
        using (CobraClient dispatched = new CobraClient(Options(), onMain.OnEvent, dispatcher))
        {
            dispatched.Connect();
            DateTime deadline = DateTime.UtcNow + Patience;
            while (onMain.Count(CobraEventKind.Authenticated) == 0 && DateTime.UtcNow < deadline)
            {
                if (dispatcher.Drain() == 0)
                {
                    Thread.Sleep(5); // a frame
                }
            }
            Check(onMain.Count(CobraEventKind.Authenticated) == 1, "authenticated through the dispatcher");
            Check(onMain.HandlerThreads.SetEquals(new[] { Thread.CurrentThread.ManagedThreadId }), "every handler ran on the draining thread");
        }
        MainThreadDispatcher tiny = new MainThreadDispatcher(capacity: 2);
        int ran = 0;
        for (int i = 0; i < 5; i++)
        {
            int v = i;
            tiny.Post(() => ran = ran * 10 + v);
        }
        Check(tiny.Dropped == 3 && tiny.Drain() == 2 && ran == 34, "a full dispatcher drops the oldest (kept the last two)");

        Section("an aggregate subscription (GROUP BY over windows): exact rows");
        // A fixed sequence with explicit timestamps, minutes apart with a 2-minute grace so that the arrival clock
        // cannot close a window during the test: the 12-minute event closes [0, 10 min), the 9-minute one after it
        // is late, the 23-minute one closes [10, 20 min). Row keys are in alphabetical order (the SDK's JSON values
        // do not keep the broker's SELECT order, see the README).
        string aggChannel = Unique("unity_agg");
        Recorder aggRec = new Recorder();
        using (CobraClient agg = new CobraClient(Options(), aggRec.OnEvent))
        {
            agg.Subscribe(aggChannel, "agg",
                "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h " +
                "FROM `" + aggChannel + "` WHERE device.os_name = 'iOS' GROUP BY device.model " +
                "WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES");
            agg.Connect();
            Check(aggRec.WaitCount(CobraEventKind.Subscribed, 1), "aggregate subscription accepted");
            const long minute = 60000;
            object[][] sequence = {
                new object[] { "iPhone", "iOS", 60, minute }, new object[] { "iPad", "iOS", 30, 2 * minute },
                new object[] { "iPhone", "iOS", 59, 3 * minute }, new object[] { "Pixel", "Android", 60, 4 * minute },
                new object[] { "iPhone", "iOS", 10, 9 * minute }, new object[] { "iPad", "iOS", 7, 9 * minute + minute / 2 },
                new object[] { "iPhone", "iOS", 60, 12 * minute }, new object[] { "iPhone", "iOS", 60, 9 * minute },
                new object[] { "iPad", "iOS", 15, 23 * minute },
            };
            foreach (object[] e in sequence)
            {
                agg.Publish(aggChannel, string.Format(
                    "{{\"id\":\"{0}\",\"device\":{{\"model\":\"{1}\",\"os_name\":\"{2}\"}},\"data\":{{\"fps\":{3}}},\"timestamp\":{4}}}",
                    aggChannel, e[0], e[1], e[2], e[3]));
            }
            string[] want = {
                "{\"count\":3,\"device.model\":\"iPhone\",\"final\":true,\"fps\":43,\"h\":{\"counts\":[0,2,0,0,1,0],\"edges\":[60,30,15,10,8]," +
                    "\"shares\":[0,0.6666666666666666,0,0,0.3333333333333333,0]},\"late\":0,\"skipped\":0,\"window_end\":600000,\"window_start\":0}",
                "{\"count\":2,\"device.model\":\"iPad\",\"final\":true,\"fps\":18.5,\"h\":{\"counts\":[0,0,1,0,0,1],\"edges\":[60,30,15,10,8]," +
                    "\"shares\":[0,0,0.5,0,0,0.5]},\"late\":0,\"skipped\":0,\"window_end\":600000,\"window_start\":0}",
                "{\"count\":1,\"device.model\":\"iPhone\",\"final\":true,\"fps\":60,\"h\":{\"counts\":[0,1,0,0,0,0],\"edges\":[60,30,15,10,8]," +
                    "\"shares\":[0,1,0,0,0,0]},\"late\":1,\"skipped\":0,\"window_end\":1200000,\"window_start\":600000}",
            };
            Check(aggRec.WaitUntil(() => aggRec.Messages.Count >= 3), "3 aggregate rows arrive");
            List<string> rows = aggRec.MessagesSnapshot();
            Check(rows.SequenceEqual(want), "the exact rows, got:\n" + string.Join("\n", rows.ToArray()));
        }

        Section("dispose while callbacks run");
        string flood = Unique("unity_flood");
        int afterDispose = 0, inHandler = 0;
        bool disposed = false;
        Recorder floodRec = new Recorder();
        CobraClient victim = new CobraClient(Options(), e =>
        {
            Interlocked.Increment(ref inHandler);
            if (Volatile.Read(ref disposed))
            {
                Interlocked.Increment(ref afterDispose);
            }
            floodRec.OnEvent(e);
            if (e.Kind == CobraEventKind.SubscriptionData && e.Messages.Any(m => m.Contains("\"throw\":true")))
            {
                throw new InvalidOperationException("a handler that throws must not crash the process");
            }
            Thread.SpinWait(2000);
        });
        victim.Subscribe(flood, batchSize: 1);
        victim.Connect();
        Check(floodRec.WaitCount(CobraEventKind.Subscribed, 1), "flood subscription");
        client.Publish(flood, "{\"throw\":true}");
        Check(floodRec.WaitCount(CobraEventKind.SubscriptionData, 1), "the first flood message arrives");
        bool stop = false;
        Thread flooder = new Thread(() =>
        {
            int i = 0;
            while (!Volatile.Read(ref stop))
            {
                try
                {
                    client.Publish(flood, "{\"i\":" + (i++) + "}");
                    victim.Publish(flood, "{\"self\":" + i + "}");
                }
                catch (ObjectDisposedException)
                {
                    // The victim went away under this thread: the expected outcome.
                }
                if (i % 64 == 0)
                {
                    Thread.Sleep(1);
                }
            }
        });
        flooder.Start();
        Check(floodRec.WaitCount(CobraEventKind.SubscriptionData, 200), "callbacks are running when Dispose is called");
        victim.Dispose();
        Volatile.Write(ref disposed, true);
        int handlerCalls = Volatile.Read(ref inHandler);
        Thread.Sleep(200); // give a wrongly late callback the time to show up
        Volatile.Write(ref stop, true);
        flooder.Join();
        Check(Volatile.Read(ref afterDispose) == 0 && Volatile.Read(ref inHandler) == handlerCalls,
            "no handler runs after Dispose returned (" + afterDispose + " did)");
        lock (callbackErrors)
        {
            Check(callbackErrors.Count == 1 && callbackErrors[0] is InvalidOperationException, "the throwing handler was reported once");
        }
        try
        {
            victim.Publish(flood, "{}");
            Check(false, "a disposed client refuses calls");
        }
        catch (ObjectDisposedException)
        {
        }
        victim.Dispose(); // twice is fine

        Section("dispose from inside the client's own handler");
        CobraClient selfDisposing = null;
        ManualResetEvent selfDone = new ManualResetEvent(false);
        selfDisposing = new CobraClient(Options(), e =>
        {
            if (e.Kind == CobraEventKind.Authenticated)
            {
                selfDisposing.Dispose();
                selfDone.Set();
            }
        });
        selfDisposing.Connect();
        Check(selfDone.WaitOne(Patience), "disposed from its handler");
        Check(selfDisposing.IsDisposed, "the handle is closed");

        Section("no handle leaks");
        client.Dispose();
        ExpectHandles(0, 0, "after disposing every client");
        Abandon();
        Check(CobraLibrary.LiveHandles().Clients == 1, "the abandoned client is live until collected");
        CollectGarbage();
        ExpectHandles(0, 0, "after the finalizer freed an abandoned client");

        Console.WriteLine(string.Format("cobra Unity runtime on Mono: all {0} checks passed in {1:F1} s", checks, total.Elapsed.TotalSeconds));
        return 0;
    }
}
