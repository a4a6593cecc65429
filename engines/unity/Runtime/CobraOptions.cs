using System;
using System.Collections.Generic;

namespace Cobra
{
    /// <summary>What Publish does when the bounded publish queue is full.</summary>
    public enum CobraOverflowPolicy
    {
        /// <summary>Drop the oldest queued message (a PublishDropped event reports it). The default.</summary>
        DropOldest = 0,
        /// <summary>Refuse the new message: Publish throws with CobraStatus.QueueFull.</summary>
        RefuseNew = 1,
    }

    /// <summary>Delivery guarantee of published messages across reconnects.</summary>
    public enum CobraDelivery
    {
        /// <summary>Unacknowledged messages are sent again after a reconnect. The default.</summary>
        AtLeastOnce = 0,
        /// <summary>A message is forgotten once written to the socket.</summary>
        AtMostOnce = 1,
    }

    /// <summary>The options of a <see cref="CobraClient"/>. Null or 0 keeps libcobra's default (see include/cobra.h);
    /// Endpoint, AppKey, Role and Secret are required.</summary>
    public sealed class CobraOptions
    {
        /// <summary>ws://host:port[/path] or wss://... (path defaults to /v2).</summary>
        public string Endpoint;
        /// <summary>The application key.</summary>
        public string AppKey;
        /// <summary>The role name used for role_secret authentication.</summary>
        public string Role;
        /// <summary>The role's secret.</summary>
        public string Secret;
        /// <summary>Extra trusted CA certificates (PEM) for wss://.</summary>
        public string TlsCaPem;
        /// <summary>SPKI pins (base64 SHA-256, HPKP pin-sha256 format).</summary>
        public List<string> TlsPins = new List<string>();
        /// <summary>permessage-deflate compression (default on).</summary>
        public bool Deflate = true;
        /// <summary>Heartbeat ping interval in ms (0 with PongTimeoutMs 0: keep the default of 30000).</summary>
        public ulong PingIntervalMs;
        /// <summary>Pong timeout in ms (default 10000).</summary>
        public ulong PongTimeoutMs;
        /// <summary>Reconnect backoff floor in ms (default 250).</summary>
        public ulong BackoffMinMs;
        /// <summary>Reconnect backoff ceiling in ms (default 30000).</summary>
        public ulong BackoffMaxMs;
        /// <summary>Publish queue bound in messages (default 10000).</summary>
        public ulong QueueMaxMessages;
        /// <summary>Publish queue bound in bytes (default 128 MiB).</summary>
        public ulong QueueMaxBytes;
        /// <summary>What happens when the publish queue is full.</summary>
        public CobraOverflowPolicy OverflowPolicy = CobraOverflowPolicy.DropOldest;
        /// <summary>Delivery guarantee across reconnects.</summary>
        public CobraDelivery Delivery = CobraDelivery.AtLeastOnce;
        /// <summary>A directory for an on-disk spool of pending messages (null: in memory only). On a device use
        /// Application.persistentDataPath.</summary>
        public string SpoolDirectory;
        /// <summary>The spool's size bound in bytes.</summary>
        public ulong SpoolMaxBytes = 16UL * 1024 * 1024;
        /// <summary>The largest message in bytes (default 64 MiB).</summary>
        public ulong MaxMessageSize;
        /// <summary>http://[user:pass@]host:port of an HTTP CONNECT proxy.</summary>
        public string Proxy;
        /// <summary>The User-Agent of the upgrade request.</summary>
        public string UserAgent;
        /// <summary>Extra headers of the upgrade request.</summary>
        public Dictionary<string, string> Headers = new Dictionary<string, string>();
        /// <summary>Connect timeout in ms (default 10000).</summary>
        public ulong ConnectTimeoutMs;
        /// <summary>Proxy + TLS + upgrade + authentication timeout in ms (default 10000).</summary>
        public ulong HandshakeTimeoutMs;
        /// <summary>Default request timeout in ms (default 10000).</summary>
        public ulong RequestTimeoutMs;

        /// <summary>A cobra_config_t filled from these options; the caller hands it to cobra_client_new.</summary>
        internal IntPtr ToNative()
        {
            IntPtr c = Native.cobra_config_new();
            if (c == IntPtr.Zero)
            {
                Native.Check(CobraStatus.Internal);
            }
            try
            {
                Native.Check(Native.cobra_config_set_endpoint(c, Utf8.Encode(Required(Endpoint, "Endpoint"))));
                Native.Check(Native.cobra_config_set_appkey(c, Utf8.Encode(Required(AppKey, "AppKey"))));
                Native.Check(Native.cobra_config_set_role(c, Utf8.Encode(Required(Role, "Role"))));
                Native.Check(Native.cobra_config_set_secret(c, Utf8.Encode(Required(Secret, "Secret"))));
                if (TlsCaPem != null)
                {
                    Native.Check(Native.cobra_config_set_tls_ca_pem(c, Utf8.Encode(TlsCaPem)));
                }
                foreach (string pin in TlsPins)
                {
                    Native.Check(Native.cobra_config_add_tls_pin(c, Utf8.Encode(pin)));
                }
                Native.Check(Native.cobra_config_set_deflate(c, Deflate));
                if (PingIntervalMs != 0 || PongTimeoutMs != 0)
                {
                    Native.Check(Native.cobra_config_set_heartbeat(c, PingIntervalMs, PongTimeoutMs == 0 ? 10000 : PongTimeoutMs));
                }
                if (BackoffMinMs != 0 || BackoffMaxMs != 0)
                {
                    Native.Check(Native.cobra_config_set_backoff(c, BackoffMinMs == 0 ? 250 : BackoffMinMs, BackoffMaxMs == 0 ? 30000 : BackoffMaxMs));
                }
                if (QueueMaxMessages != 0 || QueueMaxBytes != 0 || OverflowPolicy != CobraOverflowPolicy.DropOldest)
                {
                    Native.Check(Native.cobra_config_set_queue_limits(c, QueueMaxMessages == 0 ? 10000 : QueueMaxMessages,
                        QueueMaxBytes == 0 ? 128UL << 20 : QueueMaxBytes, (int)OverflowPolicy));
                }
                Native.Check(Native.cobra_config_set_delivery(c, (int)Delivery));
                if (SpoolDirectory != null)
                {
                    Native.Check(Native.cobra_config_set_spool(c, Utf8.Encode(SpoolDirectory), SpoolMaxBytes));
                }
                if (MaxMessageSize != 0)
                {
                    Native.Check(Native.cobra_config_set_max_message_size(c, MaxMessageSize));
                }
                if (Proxy != null)
                {
                    Native.Check(Native.cobra_config_set_proxy(c, Utf8.Encode(Proxy)));
                }
                if (UserAgent != null)
                {
                    Native.Check(Native.cobra_config_set_user_agent(c, Utf8.Encode(UserAgent)));
                }
                foreach (KeyValuePair<string, string> h in Headers)
                {
                    Native.Check(Native.cobra_config_add_header(c, Utf8.Encode(h.Key), Utf8.Encode(h.Value)));
                }
                if (ConnectTimeoutMs != 0 || HandshakeTimeoutMs != 0 || RequestTimeoutMs != 0)
                {
                    Native.Check(Native.cobra_config_set_timeouts(c, ConnectTimeoutMs == 0 ? 10000 : ConnectTimeoutMs,
                        HandshakeTimeoutMs == 0 ? 10000 : HandshakeTimeoutMs, RequestTimeoutMs == 0 ? 10000 : RequestTimeoutMs));
                }
                return c;
            }
            catch
            {
                Native.cobra_config_free(c);
                throw;
            }
        }

        private static string Required(string value, string name)
        {
            if (string.IsNullOrEmpty(value))
            {
                throw new ArgumentException("CobraOptions." + name + " is required", name);
            }
            return value;
        }
    }
}
