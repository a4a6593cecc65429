using System;
using System.Runtime.InteropServices;

namespace Cobra
{
    /// <summary>What an event reports (cobra_event_kind_t).</summary>
    public enum CobraEventKind
    {
        /// <summary>A connection attempt starts (Url, Attempt).</summary>
        Connecting = 0,
        /// <summary>The WebSocket is open.</summary>
        Open = 1,
        /// <summary>The server answered the handshake (ConnectionId, ServerVersion).</summary>
        Handshake = 2,
        /// <summary>Authenticated: publishes and subscriptions flow.</summary>
        Authenticated = 3,
        /// <summary>The connection closed (CloseCode, Reason, ClosedByRemote).</summary>
        Closed = 4,
        /// <summary>A connection-level error; the client retries after WaitMs unless it is -1.</summary>
        Error = 5,
        /// <summary>The client waits WaitMs before attempt number Attempt.</summary>
        Reconnecting = 6,
        /// <summary>A subscription is active (SubscriptionId, Position), also after each re-subscription.</summary>
        Subscribed = 7,
        /// <summary>A subscription ended (SubscriptionId).</summary>
        Unsubscribed = 8,
        /// <summary>Messages for a subscription (SubscriptionId, Position, Messages).</summary>
        SubscriptionData = 9,
        /// <summary>The server refused or ended a subscription (SubscriptionId, Error, Reason).</summary>
        SubscriptionError = 10,
        /// <summary>Information about a subscription (SubscriptionId, InfoJson).</summary>
        SubscriptionInfo = 11,
        /// <summary>The server acknowledged a published message (PublishId).</summary>
        Published = 12,
        /// <summary>A message left the publish queue without an acknowledgement (PublishId, Reason).</summary>
        PublishDropped = 13,
        /// <summary>A heartbeat pong arrived (RttUs).</summary>
        Pong = 14,
    }

    /// <summary>The class of a connection error (cobra_error_kind_t).</summary>
    public enum CobraErrorKind
    {
        /// <summary>Not an error event.</summary>
        None = 0,
        /// <summary>Name resolution failed.</summary>
        Dns = 1,
        /// <summary>The TCP connection could not be established.</summary>
        Connect = 2,
        /// <summary>The HTTP CONNECT proxy refused or failed.</summary>
        Proxy = 3,
        /// <summary>TLS failed.</summary>
        Tls = 4,
        /// <summary>The WebSocket upgrade failed.</summary>
        Handshake = 5,
        /// <summary>The server refused the appkey.</summary>
        Forbidden = 6,
        /// <summary>The role or secret was refused.</summary>
        AuthenticationFailed = 7,
        /// <summary>A connection step timed out.</summary>
        Timeout = 8,
        /// <summary>No pong came in time.</summary>
        PongTimeout = 9,
        /// <summary>The peer broke the protocol.</summary>
        Protocol = 10,
        /// <summary>The connection was lost.</summary>
        ConnectionLost = 11,
        /// <summary>The server closed the WebSocket.</summary>
        ClosedByServer = 12,
        /// <summary>The on-disk spool failed.</summary>
        Spool = 13,
        /// <summary>Any other error.</summary>
        Other = 14,
    }

    /// <summary>The connection state (cobra_client_state_t).</summary>
    public enum CobraClientState
    {
        /// <summary>Not connected and not trying.</summary>
        Disconnected = 0,
        /// <summary>Connecting.</summary>
        Connecting = 1,
        /// <summary>Authenticating.</summary>
        Authenticating = 2,
        /// <summary>Connected and authenticated.</summary>
        Connected = 3,
        /// <summary>Waiting before the next attempt.</summary>
        Reconnecting = 4,
        /// <summary>Suspended until Resume.</summary>
        Suspended = 5,
        /// <summary>The engine has stopped.</summary>
        Stopped = 6,
    }

    /// <summary>One event of a client, copied out of libcobra's callback (so it may be kept and handed to another
    /// thread). Fields that do not apply to <see cref="Kind"/> are null or 0.</summary>
    public sealed class CobraEvent
    {
        /// <summary>What happened; says which fields are set.</summary>
        public CobraEventKind Kind;
        /// <summary>Connecting: the URL.</summary>
        public string Url;
        /// <summary>Connecting, Reconnecting: the attempt number.</summary>
        public uint Attempt;
        /// <summary>Handshake: the server's id for this connection.</summary>
        public string ConnectionId;
        /// <summary>Handshake: the server's version.</summary>
        public string ServerVersion;
        /// <summary>Closed: the WebSocket close code.</summary>
        public ushort CloseCode;
        /// <summary>Closed: true when the server or the network closed the connection.</summary>
        public bool ClosedByRemote;
        /// <summary>Closed, Error, SubscriptionError, PublishDropped: why.</summary>
        public string Reason;
        /// <summary>Error: the class of error.</summary>
        public CobraErrorKind ErrorKind;
        /// <summary>Error: consecutive failed attempts.</summary>
        public uint RetryCount;
        /// <summary>Error, Reconnecting: the delay before the next attempt (-1: none follows).</summary>
        public long WaitMs;
        /// <summary>Subscription events: the subscription.</summary>
        public string SubscriptionId;
        /// <summary>Subscribed, SubscriptionData: the resume position (may be null).</summary>
        public string Position;
        /// <summary>SubscriptionData: each message as JSON text (the projection when filtered).</summary>
        public string[] Messages;
        /// <summary>SubscriptionError: the server's error code.</summary>
        public string Error;
        /// <summary>SubscriptionInfo: the info body as JSON text.</summary>
        public string InfoJson;
        /// <summary>Published, PublishDropped: the id Publish returned.</summary>
        public ulong PublishId;
        /// <summary>Pong: the heartbeat round trip in microseconds.</summary>
        public ulong RttUs;

        /// <inheritdoc/>
        public override string ToString()
        {
            switch (Kind)
            {
                case CobraEventKind.SubscriptionData:
                    return string.Format("SubscriptionData({0}, {1} messages)", SubscriptionId, Messages.Length);
                case CobraEventKind.Error:
                    return string.Format("Error({0}: {1}, wait {2} ms)", ErrorKind, Reason, WaitMs);
                case CobraEventKind.Closed:
                    return string.Format("Closed({0} {1})", CloseCode, Reason);
                default:
                    return Kind.ToString();
            }
        }

        /// <summary>Copies a cobra_event_t, valid only during the callback, into managed memory.</summary>
        internal static CobraEvent FromNative(IntPtr ptr)
        {
            Native.Event n = (Native.Event)Marshal.PtrToStructure(ptr, typeof(Native.Event));
            CobraEvent e = new CobraEvent
            {
                Kind = (CobraEventKind)n.Kind,
                Url = Utf8.Decode(n.Url),
                Attempt = n.Attempt,
                ConnectionId = Utf8.Decode(n.ConnectionId),
                ServerVersion = Utf8.Decode(n.ServerVersion),
                CloseCode = n.CloseCode,
                ClosedByRemote = n.ClosedByRemote != 0,
                Reason = Utf8.Decode(n.Reason),
                ErrorKind = (CobraErrorKind)n.ErrorKind,
                RetryCount = n.RetryCount,
                WaitMs = n.WaitMs,
                SubscriptionId = Utf8.Decode(n.SubscriptionId),
                Position = Utf8.Decode(n.Position),
                Error = Utf8.Decode(n.Error),
                InfoJson = Utf8.Decode(n.InfoJson),
                PublishId = n.PublishId,
                RttUs = n.RttUs,
            };
            int count = (int)n.MessageCount.ToUInt64();
            e.Messages = new string[count];
            for (int i = 0; i < count; i++)
            {
                IntPtr msg = Marshal.ReadIntPtr(n.Messages, i * IntPtr.Size);
                // size_t lengths: read as pointer-sized integers.
                long len = Marshal.ReadIntPtr(n.MessageLens, i * IntPtr.Size).ToInt64();
                e.Messages[i] = Utf8.Decode(msg, checked((int)len));
            }
            return e;
        }
    }
}
