using System;
using System.Collections.Generic;

namespace Cobra
{
    /// <summary>What became of a pushed metrics event.</summary>
    public enum CobraPushOutcome
    {
        /// <summary>Handed to the client for publishing.</summary>
        Published = 0,
        /// <summary>Dropped: the publisher is disabled.</summary>
        Disabled = 1,
        /// <summary>Dropped: the id is blacklisted.</summary>
        Blacklisted = 2,
        /// <summary>Dropped: the id's previous event was too recent (rate control).</summary>
        RateLimited = 3,
    }

    /// <summary>Counters of a metrics publisher since its creation.</summary>
    public struct CobraMetricsStats
    {
        /// <summary>Events handed to the client.</summary>
        public ulong Published;
        /// <summary>Events dropped while disabled.</summary>
        public ulong Disabled;
        /// <summary>Events dropped for a blacklisted id.</summary>
        public ulong Blacklisted;
        /// <summary>Events dropped by rate control.</summary>
        public ulong RateLimited;
        /// <summary>Events the client refused (queue full, client disposed).</summary>
        public ulong Failed;
    }

    /// <summary>
    /// The telemetry publisher of the original cobras SDKs: each pushed event is wrapped in the envelope (id, version,
    /// session, timestamp, per_id_counter, device, data) and published to the publisher's channel and to a channel
    /// named after the event id, so StreamSQL filters such as <c>select data.fps from `engine_fps_id`</c> see it.
    /// Thread-safe; never blocks.
    /// </summary>
    public sealed class CobraMetrics : IDisposable
    {
        private readonly MetricsHandle handle;

        internal CobraMetrics(MetricsHandle handle)
        {
            this.handle = handle;
        }

        private MetricsHandle Handle
        {
            get
            {
                if (handle.IsClosed)
                {
                    throw new ObjectDisposedException("CobraMetrics");
                }
                return handle;
            }
        }

        /// <summary>Pushes one event: <paramref name="id"/> names it (e.g. "engine_fps_id"), <paramref name="dataJson"/>
        /// is its data (e.g. {"fps":30}).</summary>
        public CobraPushOutcome Push(string id, string dataJson)
        {
            ulong publishId;
            return Push(id, dataJson, out publishId);
        }

        /// <summary>Like <see cref="Push(string,string)"/>, also giving the client's publish id (0 when dropped).</summary>
        public CobraPushOutcome Push(string id, string dataJson, out ulong publishId)
        {
            if (id == null || dataJson == null)
            {
                throw new ArgumentNullException(id == null ? "id" : "dataJson");
            }
            int outcome;
            Native.Check(Native.cobra_metrics_push(Handle, Utf8.Encode(id), Utf8.Encode(dataJson), out outcome, out publishId));
            return (CobraPushOutcome)outcome;
        }

        /// <summary>Enables (the default) or disables the publisher; disabled, events are dropped and counted.</summary>
        public void SetEnabled(bool enabled)
        {
            Native.Check(Native.cobra_metrics_set_enabled(Handle, enabled));
        }

        /// <summary>The session id sent with every event (by default 32 random hex characters).</summary>
        public string Session
        {
            get
            {
                IntPtr s;
                Native.Check(Native.cobra_metrics_session(Handle, out s));
                return Native.TakeString(s);
            }
            set
            {
                if (value == null)
                {
                    throw new ArgumentNullException("value");
                }
                Native.Check(Native.cobra_metrics_set_session(Handle, Utf8.Encode(value)));
            }
        }

        /// <summary>Sets one device attribute; <paramref name="valueJson"/> is JSON ("\"iPhone\"", 42, true).</summary>
        public void SetDeviceAttribute(string name, string valueJson)
        {
            if (name == null || valueJson == null)
            {
                throw new ArgumentNullException(name == null ? "name" : "valueJson");
            }
            Native.Check(Native.cobra_metrics_set_device_attribute(Handle, Utf8.Encode(name), Utf8.Encode(valueJson)));
        }

        /// <summary>Replaces all device attributes with the members of a JSON object.</summary>
        public void SetDeviceAttributes(string attributesJson)
        {
            if (attributesJson == null)
            {
                throw new ArgumentNullException("attributesJson");
            }
            Native.Check(Native.cobra_metrics_set_device_attributes(Handle, Utf8.Encode(attributesJson)));
        }

        /// <summary>Replaces the blacklist (no ids: clears it).</summary>
        public void SetBlacklist(params string[] ids)
        {
            IntPtr[] ptrs = Utf8.AllocArray(ids ?? new string[0]);
            try
            {
                Native.Check(Native.cobra_metrics_set_blacklist(Handle, ptrs, new UIntPtr((uint)ptrs.Length)));
            }
            finally
            {
                Utf8.FreeArray(ptrs);
            }
        }

        /// <summary>Replaces the rate control: at most one event per id every so many seconds (empty: no limits).</summary>
        public void SetRateControl(IDictionary<string, double> minIntervalSeconds)
        {
            if (minIntervalSeconds == null)
            {
                throw new ArgumentNullException("minIntervalSeconds");
            }
            string[] ids = new string[minIntervalSeconds.Count];
            double[] intervals = new double[minIntervalSeconds.Count];
            int i = 0;
            foreach (KeyValuePair<string, double> kv in minIntervalSeconds)
            {
                ids[i] = kv.Key;
                intervals[i] = kv.Value;
                i++;
            }
            IntPtr[] ptrs = Utf8.AllocArray(ids);
            try
            {
                Native.Check(Native.cobra_metrics_set_rate_control(Handle, ptrs, intervals, new UIntPtr((uint)ptrs.Length)));
            }
            finally
            {
                Utf8.FreeArray(ptrs);
            }
        }

        /// <summary>The publisher's counters.</summary>
        public CobraMetricsStats Stats
        {
            get
            {
                Native.MetricsStats s;
                Native.Check(Native.cobra_metrics_stats(Handle, out s));
                return new CobraMetricsStats
                {
                    Published = s.Published,
                    Disabled = s.Disabled,
                    Blacklisted = s.Blacklisted,
                    RateLimited = s.RateLimited,
                    Failed = s.Failed,
                };
            }
        }

        /// <summary>Frees the native publisher (the client is not affected).</summary>
        public void Dispose()
        {
            handle.Dispose();
        }
    }
}
