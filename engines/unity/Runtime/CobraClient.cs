using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;

namespace Cobra
{
    /// <summary>
    /// A cobra client: one connection to a broker, kept up by libcobra's engine thread (reconnects with backoff,
    /// re-subscribes from the last position, re-sends unacknowledged publishes).
    /// <para>Threads: every method may be called from any thread. Events arrive on the engine thread, or on the
    /// thread that drains the <see cref="MainThreadDispatcher"/> given to the constructor (Unity: the main thread).
    /// The blocking calls (Read, Write, Delete, Request) throw with CobraStatus.WrongThread from an event handler
    /// that runs on the engine thread.</para>
    /// <para>Dispose (or let the garbage collector finalize) to stop the engine and free the native client. When
    /// Dispose returns no event handler runs any more on the engine thread (unless another thread is still inside a
    /// call on this client: the native client is then freed when that call returns).</para>
    /// </summary>
    public sealed class CobraClient : IDisposable
    {
        /// <summary>Receives the events; the GCHandle given to libcobra points here, not to the client, so a client
        /// nobody disposed can still be finalized.</summary>
        private sealed class EventSink
        {
            internal readonly Action<CobraEvent> Handler;
            internal readonly MainThreadDispatcher Dispatcher;
            // Held while a handler runs on the engine thread; Dispose takes it to set Closed, so once Dispose has
            // returned no handler runs, even when the native free is deferred by a call still in flight on another
            // thread (SafeHandle reference counting).
            internal readonly object Gate = new object();
            internal bool Closed;

            internal EventSink(Action<CobraEvent> handler, MainThreadDispatcher dispatcher)
            {
                Handler = handler;
                Dispatcher = dispatcher;
            }
        }

        // One static delegate for every client, kept alive for the life of the process: IL2CPP can only marshal
        // static methods, and a collected delegate would leave libcobra a dangling function pointer.
        private static readonly Native.EventCallback NativeCallback = OnNativeEvent;

        private readonly ClientHandle handle;
        private readonly EventSink sink;

        // Clients not yet disposed, weakly held (a forgotten client is still finalized). At process exit and when the
        // domain unloads (Unity reloads scripts on entering play mode and after every compile), they are disposed
        // first: an engine thread calling into a runtime that is shutting down, or into an unloaded domain, would
        // hang or crash the process.
        private static readonly List<WeakReference> Live = new List<WeakReference>();
        private static bool shutdownHooked;

        /// <summary>Creates a client (not connected yet: call <see cref="Connect"/>).</summary>
        /// <param name="options">Where and who to connect as; copied.</param>
        /// <param name="onEvent">Receives every event (null: none); must not throw (exceptions are caught and
        /// reported to <see cref="CobraLibrary.CallbackError"/>). libcobra holds it until Dispose, so a handler that
        /// references this client keeps it from being finalized: dispose such clients.</param>
        /// <param name="dispatcher">When set, <paramref name="onEvent"/> runs on the thread that drains it instead of
        /// the engine thread.</param>
        public CobraClient(CobraOptions options, Action<CobraEvent> onEvent = null, MainThreadDispatcher dispatcher = null)
        {
            if (options == null)
            {
                throw new ArgumentNullException("options");
            }
            IntPtr config = options.ToNative();
            handle = new ClientHandle();
            sink = new EventSink(onEvent, dispatcher);
            GCHandle slot = GCHandle.Alloc(sink);
            IntPtr raw;
            // cobra_client_new consumes the config, even when it fails.
            CobraStatus status = Native.cobra_client_new(config, onEvent == null ? null : NativeCallback,
                GCHandle.ToIntPtr(slot), out raw);
            if (status != CobraStatus.Ok)
            {
                slot.Free();
                Native.Check(status);
            }
            handle.Init(raw, GCHandle.ToIntPtr(slot));
            Track(this);
        }

        private static void Track(CobraClient client)
        {
            lock (Live)
            {
                if (!shutdownHooked)
                {
                    shutdownHooked = true;
                    AppDomain.CurrentDomain.ProcessExit += (sender, args) => DisposeAll();
                    AppDomain.CurrentDomain.DomainUnload += (sender, args) => DisposeAll();
                }
                Live.RemoveAll(w => !w.IsAlive);
                Live.Add(new WeakReference(client));
            }
        }

        /// <summary>Disposes every client not yet disposed (run at process exit and domain unload).</summary>
        internal static void DisposeAll()
        {
            List<CobraClient> clients = new List<CobraClient>();
            lock (Live)
            {
                foreach (WeakReference w in Live)
                {
                    CobraClient c = w.Target as CobraClient;
                    if (c != null)
                    {
                        clients.Add(c);
                    }
                }
                Live.Clear();
            }
            foreach (CobraClient c in clients)
            {
                try
                {
                    c.Dispose();
                }
                catch (Exception ex)
                {
                    CobraLibrary.ReportCallbackError(ex);
                }
            }
        }

        [AOT.MonoPInvokeCallback(typeof(Native.EventCallback))]
        private static void OnNativeEvent(IntPtr evt, IntPtr userData)
        {
            // An exception must never unwind into libcobra's frames: that aborts the process on Mono and IL2CPP.
            try
            {
                EventSink sink = GCHandle.FromIntPtr(userData).Target as EventSink;
                if (sink == null || sink.Handler == null)
                {
                    return;
                }
                CobraEvent e = CobraEvent.FromNative(evt);
                lock (sink.Gate)
                {
                    if (sink.Closed)
                    {
                        return;
                    }
                    if (sink.Dispatcher != null)
                    {
                        Action<CobraEvent> handler = sink.Handler;
                        EventSink owner = sink;
                        // Checked again on the draining thread: a client disposed meanwhile delivers nothing more.
                        sink.Dispatcher.Post(() =>
                        {
                            if (!Volatile.Read(ref owner.Closed))
                            {
                                handler(e);
                            }
                        });
                    }
                    else
                    {
                        sink.Handler(e);
                    }
                }
            }
            catch (Exception ex)
            {
                CobraLibrary.ReportCallbackError(ex);
            }
        }

        internal ClientHandle Handle
        {
            get
            {
                if (handle.IsClosed)
                {
                    throw new ObjectDisposedException("CobraClient");
                }
                return handle;
            }
        }

        /// <summary>True once disposed.</summary>
        public bool IsDisposed
        {
            get { return handle.IsClosed; }
        }

        /// <summary>Starts connecting in the background; keeps reconnecting until Disconnect.</summary>
        public void Connect()
        {
            Native.Check(Native.cobra_client_connect(Handle));
        }

        /// <summary>Closes the connection and stops retrying; queued publishes stay queued.</summary>
        public void Disconnect()
        {
            Native.Check(Native.cobra_client_disconnect(Handle));
        }

        /// <summary>For an app going to the background (OnApplicationPause(true)): closes the connection until
        /// <see cref="Resume"/>; publishes keep queueing.</summary>
        public void Suspend()
        {
            Native.Check(Native.cobra_client_suspend(Handle));
        }

        /// <summary>Undoes <see cref="Suspend"/>: connects again at once.</summary>
        public void Resume()
        {
            Native.Check(Native.cobra_client_resume(Handle));
        }

        /// <summary>The network changed (Wi-Fi to cellular): reconnect at once.</summary>
        public void NetworkChanged()
        {
            Native.Check(Native.cobra_client_network_changed(Handle));
        }

        /// <summary>The connection state.</summary>
        public CobraClientState State
        {
            get
            {
                int state;
                Native.Check(Native.cobra_client_state(Handle, out state));
                return (CobraClientState)state;
            }
        }

        /// <summary>Messages in the publish queue (not yet sent plus awaiting acknowledgement).</summary>
        public long PendingCount
        {
            get
            {
                UIntPtr count;
                Native.Check(Native.cobra_client_pending_count(Handle, out count));
                return (long)count.ToUInt64();
            }
        }

        /// <summary>Publishes <paramref name="messageJson"/> (JSON text) to <paramref name="channel"/>. Never blocks:
        /// the message is queued (bounded) and sent, again after a reconnect, until acknowledged.</summary>
        /// <returns>The id that comes back in a Published or PublishDropped event.</returns>
        public ulong Publish(string channel, string messageJson)
        {
            ulong id;
            Native.Check(Native.cobra_client_publish(Handle, Utf8.Encode(NotNull(channel, "channel")),
                Utf8.Encode(NotNull(messageJson, "messageJson")), out id));
            return id;
        }

        /// <summary>Publishes one message to several channels (one request).</summary>
        public ulong Publish(IList<string> channels, string messageJson)
        {
            NotNull(channels, "channels");
            string[] copy = new string[channels.Count];
            channels.CopyTo(copy, 0);
            IntPtr[] ptrs = Utf8.AllocArray(copy);
            try
            {
                ulong id;
                Native.Check(Native.cobra_client_publish_channels(Handle, ptrs, new UIntPtr((uint)ptrs.Length),
                    Utf8.Encode(NotNull(messageJson, "messageJson")), out id));
                return id;
            }
            finally
            {
                Utf8.FreeArray(ptrs);
            }
        }

        /// <summary>Subscribes; kept across reconnects (resumed from the last position received). The outcome comes
        /// as a Subscribed or SubscriptionError event, the messages as SubscriptionData.</summary>
        /// <param name="channel">The channel (with a filter: the one in its FROM clause).</param>
        /// <param name="subscriptionId">Unique within the client; null: the channel.</param>
        /// <param name="filter">A StreamSQL statement, e.g. <c>select data.fps from `engine_fps_id` where data.fps &lt; 30</c>.</param>
        /// <param name="position">null: only new messages; "0-0": from the oldest kept; else resume after it.</param>
        /// <param name="batchSize">Messages per data event (0: the server's default).</param>
        /// <param name="fastForward">Skip ahead instead of failing when behind.</param>
        public void Subscribe(string channel, string subscriptionId = null, string filter = null, string position = null,
            uint batchSize = 0, bool fastForward = false)
        {
            Native.Check(Native.cobra_client_subscribe(Handle, Utf8.Encode(NotNull(channel, "channel")),
                Utf8.Encode(subscriptionId), Utf8.Encode(filter), Utf8.Encode(position), batchSize, fastForward));
        }

        /// <summary>Ends a subscription; an Unsubscribed event follows.</summary>
        public void Unsubscribe(string subscriptionId)
        {
            Native.Check(Native.cobra_client_unsubscribe(Handle, Utf8.Encode(NotNull(subscriptionId, "subscriptionId"))));
        }

        /// <summary>Reads the value stored on a channel (null if none). Blocks up to <paramref name="timeoutMs"/>.</summary>
        public string Read(string channel, ulong timeoutMs = 10000)
        {
            IntPtr json;
            Native.Check(Native.cobra_client_read(Handle, Utf8.Encode(NotNull(channel, "channel")), timeoutMs, out json));
            return Native.TakeString(json);
        }

        /// <summary>Stores a JSON value as the only value of a channel. Blocks up to <paramref name="timeoutMs"/>.</summary>
        public void Write(string channel, string valueJson, ulong timeoutMs = 10000)
        {
            Native.Check(Native.cobra_client_write(Handle, Utf8.Encode(NotNull(channel, "channel")),
                Utf8.Encode(NotNull(valueJson, "valueJson")), timeoutMs));
        }

        /// <summary>Deletes the value of a channel. Blocks up to <paramref name="timeoutMs"/>.</summary>
        public void Delete(string channel, ulong timeoutMs = 10000)
        {
            Native.Check(Native.cobra_client_delete(Handle, Utf8.Encode(NotNull(channel, "channel")), timeoutMs));
        }

        /// <summary>Sends any request PDU (e.g. admin/get_connections) and returns the body of its answer as JSON.</summary>
        public string Request(string action, string bodyJson, ulong timeoutMs = 10000)
        {
            IntPtr json;
            Native.Check(Native.cobra_client_request(Handle, Utf8.Encode(NotNull(action, "action")),
                Utf8.Encode(NotNull(bodyJson, "bodyJson")), timeoutMs, out json));
            return Native.TakeString(json);
        }

        /// <summary>A metrics publisher sending through this client to <paramref name="channel"/> (dispose it too; it
        /// does not keep the client alive).</summary>
        public CobraMetrics CreateMetrics(string channel)
        {
            IntPtr raw;
            Native.Check(Native.cobra_metrics_new(Handle, Utf8.Encode(NotNull(channel, "channel")), out raw));
            return new CobraMetrics(new MetricsHandle(raw));
        }

        /// <summary>Stops the engine and frees the native client.</summary>
        public void Dispose()
        {
            lock (sink.Gate)
            {
                Volatile.Write(ref sink.Closed, true);
            }
            handle.Dispose();
        }

        private static T NotNull<T>(T value, string name) where T : class
        {
            if (value == null)
            {
                throw new ArgumentNullException(name);
            }
            return value;
        }
    }
}
