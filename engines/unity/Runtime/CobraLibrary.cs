using System;
using System.Runtime.InteropServices;

namespace Cobra
{
    /// <summary>Live native handles, by type (from cobra_live_handles).</summary>
    public struct CobraHandleCounts
    {
        /// <summary>Configs not yet consumed or freed (CobraOptions turns into one only for the constructor call).</summary>
        public long Configs;
        /// <summary>Clients not yet freed.</summary>
        public long Clients;
        /// <summary>Metrics publishers not yet freed.</summary>
        public long Metrics;

        /// <inheritdoc/>
        public override string ToString()
        {
            return string.Format("configs={0} clients={1} metrics={2}", Configs, Clients, Metrics);
        }
    }

    /// <summary>Severity of a libcobra log record.</summary>
    public enum CobraLogLevel
    {
        /// <summary>No logs.</summary>
        Off = 0,
        /// <summary>Errors.</summary>
        Error = 1,
        /// <summary>Warnings.</summary>
        Warn = 2,
        /// <summary>Connection life cycle.</summary>
        Info = 3,
        /// <summary>Details.</summary>
        Debug = 4,
        /// <summary>Everything.</summary>
        Trace = 5,
    }

    /// <summary>Process-wide functions of libcobra.</summary>
    public static class CobraLibrary
    {
        private static readonly MainThreadDispatcher mainThread = new MainThreadDispatcher();
        private static readonly Native.LogCallback NativeLog = OnNativeLog;
        private static volatile Action<CobraLogLevel, string, string> logHandler;

        /// <summary>Raised (on the thread where it happened) when an event handler, a log handler or a dispatched
        /// action throws. Without a subscriber the exception is written to the Unity console or stderr.</summary>
        public static event Action<Exception> CallbackError;

        /// <summary>The shared dispatcher for the main thread (drained by CobraDispatcherBehaviour in Unity).</summary>
        public static MainThreadDispatcher MainThread
        {
            get { return mainThread; }
        }

        /// <summary>libcobra's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Utf8.Decode(Native.cobra_version()); }
        }

        /// <summary>The live native handles of this process: a leak check for tests and debug builds.</summary>
        public static CobraHandleCounts LiveHandles()
        {
            Native.HandleCounts c;
            Native.Check(Native.cobra_live_handles(out c));
            return new CobraHandleCounts
            {
                Configs = (long)c.Configs.ToUInt64(),
                Clients = (long)c.Clients.ToUInt64(),
                Metrics = (long)c.Metrics.ToUInt64(),
            };
        }

        /// <summary>Sends libcobra's logs up to <paramref name="maxLevel"/> to <paramref name="handler"/> (level, module,
        /// message), on whichever thread logged. Once per process: a second call throws (InvalidArgument).</summary>
        public static void SetLogHandler(CobraLogLevel maxLevel, Action<CobraLogLevel, string, string> handler)
        {
            if (handler == null)
            {
                throw new ArgumentNullException("handler");
            }
            logHandler = handler;
            Native.Check(Native.cobra_set_log_callback((int)maxLevel, NativeLog, IntPtr.Zero));
        }

#if UNITY_5_3_OR_NEWER
        /// <summary>Creates (once) a hidden GameObject that drains <see cref="MainThread"/> every frame. Call it from
        /// the main thread.</summary>
        public static void EnsureDispatcherBehaviour()
        {
            if (UnityEngine.Object.FindObjectOfType<CobraDispatcherBehaviour>() != null)
            {
                return;
            }
            UnityEngine.GameObject go = new UnityEngine.GameObject("cobra dispatcher");
            go.hideFlags = UnityEngine.HideFlags.HideInHierarchy;
            UnityEngine.Object.DontDestroyOnLoad(go);
            go.AddComponent<CobraDispatcherBehaviour>();
        }
#endif

        [AOT.MonoPInvokeCallback(typeof(Native.LogCallback))]
        private static void OnNativeLog(int level, IntPtr target, IntPtr message, IntPtr userData)
        {
            try
            {
                Action<CobraLogLevel, string, string> h = logHandler;
                if (h != null)
                {
                    h((CobraLogLevel)level, Utf8.Decode(target), Utf8.Decode(message));
                }
            }
            catch (Exception ex)
            {
                ReportCallbackError(ex);
            }
        }

        internal static void ReportCallbackError(Exception ex)
        {
            try
            {
                Action<Exception> h = CallbackError;
                if (h != null)
                {
                    h(ex);
                    return;
                }
#if UNITY_5_3_OR_NEWER
                UnityEngine.Debug.LogException(ex);
#else
                Console.Error.WriteLine("cobra: an event handler threw: " + ex);
#endif
            }
            catch
            {
                // Reporting must never throw into native frames.
            }
        }
    }
}
