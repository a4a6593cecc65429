// P/Invoke declarations of libcobra's C ABI (include/cobra.h). Kept internal: the public API is CobraClient,
// CobraOptions and CobraMetrics.
//
// Marshalling choices, for Mono, .NET and IL2CPP alike:
// - strings go in as NUL-terminated UTF-8 byte[] (Utf8.Encode), never as `string`: the default string
//   marshalling is ANSI on Windows .NET, and libcobra refuses anything that is not UTF-8;
// - C `bool` is marshalled as one byte (UnmanagedType.I1), `size_t` as UIntPtr;
// - handles are SafeHandles, so a call in flight keeps its handle alive while another thread disposes it.
using System;
using System.Runtime.InteropServices;

namespace Cobra
{
    internal static class Native
    {
        // iOS and tvOS link libcobra.a into the player: the symbols are bound at link time.
#if (UNITY_IOS || UNITY_TVOS) && !UNITY_EDITOR
        internal const string Lib = "__Internal";
#else
        // Resolved to libcobra.so / cobra.dll / libcobra.dylib by the runtime.
        internal const string Lib = "cobra";
#endif

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void EventCallback(IntPtr evt, IntPtr userData);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogCallback(int level, IntPtr target, IntPtr message, IntPtr userData);

        /// <summary>cobra_event_t, field for field (natural C alignment on 32- and 64-bit).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Event
        {
            public int Kind;
            public IntPtr Url;
            public uint Attempt;
            public IntPtr ConnectionId;
            public IntPtr ServerVersion;
            public ushort CloseCode;
            public byte ClosedByRemote;
            public IntPtr Reason;
            public int ErrorKind;
            public uint RetryCount;
            public long WaitMs;
            public IntPtr SubscriptionId;
            public IntPtr Position;
            public IntPtr Messages;
            public IntPtr MessageLens;
            public UIntPtr MessageCount;
            public IntPtr Error;
            public IntPtr InfoJson;
            public ulong PublishId;
            public ulong RttUs;
        }

        /// <summary>cobra_metrics_stats_t.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct MetricsStats
        {
            public ulong Published;
            public ulong Disabled;
            public ulong Blacklisted;
            public ulong RateLimited;
            public ulong Failed;
        }

        /// <summary>cobra_handle_counts_t.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct HandleCounts
        {
            public UIntPtr Configs;
            public UIntPtr Clients;
            public UIntPtr Metrics;
        }

        // ---- library ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cobra_last_error_message();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cobra_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cobra_string_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_live_handles(out HandleCounts counts);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_set_log_callback(int maxLevel, LogCallback callback, IntPtr userData);

        // ---- config ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cobra_config_new();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_free(IntPtr config);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_endpoint(IntPtr config, byte[] endpoint);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_appkey(IntPtr config, byte[] appkey);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_role(IntPtr config, byte[] role);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_secret(IntPtr config, byte[] secret);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_tls_ca_pem(IntPtr config, byte[] pem);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_add_tls_pin(IntPtr config, byte[] pin);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_deflate(IntPtr config, [MarshalAs(UnmanagedType.I1)] bool enabled);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_heartbeat(IntPtr config, ulong pingIntervalMs, ulong pongTimeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_backoff(IntPtr config, ulong minMs, ulong maxMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_queue_limits(IntPtr config, ulong maxMessages, ulong maxBytes, int policy);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_delivery(IntPtr config, int delivery);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_spool(IntPtr config, byte[] dir, ulong maxBytes);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_max_message_size(IntPtr config, ulong bytes);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_proxy(IntPtr config, byte[] url);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_add_header(IntPtr config, byte[] name, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_user_agent(IntPtr config, byte[] userAgent);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_config_set_timeouts(IntPtr config, ulong connectMs, ulong handshakeMs, ulong requestMs);

        // ---- client ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_new(IntPtr config, EventCallback callback, IntPtr userData, out IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_connect(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_disconnect(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_suspend(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_resume(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_network_changed(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_state(ClientHandle client, out int state);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_pending_count(ClientHandle client, out UIntPtr count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_publish(ClientHandle client, byte[] channel, byte[] messageJson, out ulong id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_publish_channels(ClientHandle client, IntPtr[] channels, UIntPtr channelCount, byte[] messageJson, out ulong id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_subscribe(ClientHandle client, byte[] channel, byte[] subscriptionId, byte[] filter, byte[] position, uint batchSize, [MarshalAs(UnmanagedType.I1)] bool fastForward);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_unsubscribe(ClientHandle client, byte[] subscriptionId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_read(ClientHandle client, byte[] channel, ulong timeoutMs, out IntPtr json);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_write(ClientHandle client, byte[] channel, byte[] valueJson, ulong timeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_delete(ClientHandle client, byte[] channel, ulong timeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_client_request(ClientHandle client, byte[] action, byte[] bodyJson, ulong timeoutMs, out IntPtr json);

        // ---- metrics ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_new(ClientHandle client, byte[] channel, out IntPtr metrics);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_free(IntPtr metrics);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_push(MetricsHandle metrics, byte[] id, byte[] dataJson, out int outcome, out ulong publishId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_set_enabled(MetricsHandle metrics, [MarshalAs(UnmanagedType.I1)] bool enabled);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_set_session(MetricsHandle metrics, byte[] session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_session(MetricsHandle metrics, out IntPtr session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_set_device_attribute(MetricsHandle metrics, byte[] name, byte[] valueJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_set_device_attributes(MetricsHandle metrics, byte[] attributesJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_set_blacklist(MetricsHandle metrics, IntPtr[] ids, UIntPtr count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_set_rate_control(MetricsHandle metrics, IntPtr[] ids, double[] minIntervalSeconds, UIntPtr count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern CobraStatus cobra_metrics_stats(MetricsHandle metrics, out MetricsStats stats);

        /// <summary>Throws a CobraException for any status but OK, with libcobra's message for this thread.</summary>
        internal static void Check(CobraStatus status)
        {
            if (status != CobraStatus.Ok)
            {
                throw new CobraException(status, Utf8.Decode(cobra_last_error_message()));
            }
        }

        /// <summary>Reads a string libcobra handed over (`char **`), then frees it with cobra_string_free.</summary>
        internal static string TakeString(IntPtr s)
        {
            if (s == IntPtr.Zero)
            {
                return null;
            }
            try
            {
                return Utf8.Decode(s);
            }
            finally
            {
                cobra_string_free(s);
            }
        }
    }

    /// <summary>A client handle (cobra_client_t *); releasing it frees the client, then its callback slot.</summary>
    internal sealed class ClientHandle : SafeHandle
    {
        private IntPtr callbackSlot;

        internal ClientHandle() : base(IntPtr.Zero, true)
        {
        }

        internal void Init(IntPtr client, IntPtr slot)
        {
            callbackSlot = slot;
            SetHandle(client);
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        protected override bool ReleaseHandle()
        {
            // When cobra_client_free returns, no callback of this client runs or will run, so the GCHandle that
            // the callback resolves can go.
            CobraStatus status = Native.cobra_client_free(handle);
            if (callbackSlot != IntPtr.Zero)
            {
                GCHandle.FromIntPtr(callbackSlot).Free();
                callbackSlot = IntPtr.Zero;
            }
            return status == CobraStatus.Ok;
        }
    }

    /// <summary>A metrics publisher handle (cobra_metrics_t *).</summary>
    internal sealed class MetricsHandle : SafeHandle
    {
        internal MetricsHandle(IntPtr metrics) : base(IntPtr.Zero, true)
        {
            SetHandle(metrics);
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        protected override bool ReleaseHandle()
        {
            return Native.cobra_metrics_free(handle) == CobraStatus.Ok;
        }
    }
}
