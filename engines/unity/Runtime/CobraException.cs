using System;

namespace Cobra
{
    /// <summary>The status of a libcobra call (cobra_status_t).</summary>
    public enum CobraStatus
    {
        /// <summary>Success.</summary>
        Ok = 0,
        /// <summary>An argument is invalid (NULL, not UTF-8, not JSON, out of range).</summary>
        InvalidArgument = 1,
        /// <summary>The handle is freed or of the wrong type (e.g. a disposed client).</summary>
        InvalidHandle = 2,
        /// <summary>A blocking call made from the client's own event callback.</summary>
        WrongThread = 3,
        /// <summary>The client was disconnected or shut down.</summary>
        Closed = 4,
        /// <summary>A request did not get its answer in time.</summary>
        Timeout = 5,
        /// <summary>The server answered with an error.</summary>
        Server = 6,
        /// <summary>The bounded publish queue is full and the policy refuses new messages.</summary>
        QueueFull = 7,
        /// <summary>The configuration is invalid.</summary>
        Config = 8,
        /// <summary>The server broke the protocol.</summary>
        Protocol = 9,
        /// <summary>A bug inside libcobra was caught at the boundary.</summary>
        Panic = 10,
        /// <summary>Any other internal error.</summary>
        Internal = 11,
        /// <summary>A local I/O error.</summary>
        Io = 12,
    }

    /// <summary>A failed libcobra call: its status and libcobra's message.</summary>
    public class CobraException : Exception
    {
        /// <summary>What failed.</summary>
        public CobraStatus Status { get; private set; }

        /// <summary>Creates the exception for a failed call.</summary>
        public CobraException(CobraStatus status, string message)
            : base(string.Format("{0}: {1}", status, message))
        {
            Status = status;
        }
    }
}
