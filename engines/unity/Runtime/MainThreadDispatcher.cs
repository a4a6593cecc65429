using System;
using System.Collections.Generic;

namespace Cobra
{
    /// <summary>
    /// Hands work from libcobra's engine thread to one thread of the game (Unity's main thread, where the engine API
    /// may be used). Producers call <see cref="Post"/> (any thread, never blocks); the game calls <see cref="Drain"/>
    /// once per frame (the CobraDispatcherBehaviour component does it in Update).
    /// <para>Bounded: at most <see cref="Capacity"/> actions wait. When full, the oldest waiting action is dropped
    /// and counted in <see cref="Dropped"/>, so a paused game (no frames) cannot grow memory without limit, and the
    /// newest events, the most relevant for a live view, are kept.</para>
    /// </summary>
    public sealed class MainThreadDispatcher
    {
        private readonly object gate = new object();
        private readonly Queue<Action> queue = new Queue<Action>();
        private long dropped;

        /// <summary>A dispatcher holding at most <paramref name="capacity"/> waiting actions.</summary>
        public MainThreadDispatcher(int capacity = 10000)
        {
            if (capacity < 1)
            {
                throw new ArgumentOutOfRangeException("capacity", "must be at least 1");
            }
            Capacity = capacity;
        }

        /// <summary>The bound on waiting actions.</summary>
        public int Capacity { get; private set; }

        /// <summary>Actions dropped because the queue was full.</summary>
        public long Dropped
        {
            get { lock (gate) { return dropped; } }
        }

        /// <summary>Actions waiting.</summary>
        public int Count
        {
            get { lock (gate) { return queue.Count; } }
        }

        /// <summary>Queues <paramref name="action"/> for the draining thread; drops the oldest when full.</summary>
        public void Post(Action action)
        {
            if (action == null)
            {
                throw new ArgumentNullException("action");
            }
            lock (gate)
            {
                if (queue.Count >= Capacity)
                {
                    queue.Dequeue();
                    dropped++;
                }
                queue.Enqueue(action);
            }
        }

        /// <summary>Runs up to <paramref name="max"/> waiting actions on the calling thread, in order; returns how
        /// many ran. An action that throws is reported to <see cref="CobraLibrary.CallbackError"/> and the others
        /// still run.</summary>
        public int Drain(int max = int.MaxValue)
        {
            int ran = 0;
            while (ran < max)
            {
                Action next;
                lock (gate)
                {
                    if (queue.Count == 0)
                    {
                        break;
                    }
                    next = queue.Dequeue();
                }
                ran++;
                try
                {
                    next();
                }
                catch (Exception ex)
                {
                    CobraLibrary.ReportCallbackError(ex);
                }
            }
            return ran;
        }
    }

#if UNITY_5_3_OR_NEWER
    /// <summary>Drains <see cref="CobraLibrary.MainThread"/> every frame. Add it to one GameObject of the first scene
    /// (CobraLibrary.EnsureDispatcherBehaviour does it for you).</summary>
    public sealed class CobraDispatcherBehaviour : UnityEngine.MonoBehaviour
    {
        /// <summary>At most this many actions per frame, so a burst cannot stall a frame.</summary>
        public int MaxPerFrame = 1000;

        private void Update()
        {
            CobraLibrary.MainThread.Drain(MaxPerFrame);
        }
    }
#endif
}
