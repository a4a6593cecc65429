// IL2CPP (and Mono's full-AOT on iOS) can only call back into C# through static methods marked with an attribute
// named AOT.MonoPInvokeCallbackAttribute. Unity ships it in UnityEngine; everywhere else (the Mono test program,
// plain .NET) this definition stands in, and the runtimes match it by name.
#if !UNITY_5_3_OR_NEWER
using System;

namespace AOT
{
    /// <summary>Marks a static method that native code calls through a delegate of <c>type</c>.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        /// <summary>The delegate type the method is called through.</summary>
        public Type DelegateType { get; private set; }

        /// <summary>Marks the method.</summary>
        public MonoPInvokeCallbackAttribute(Type type)
        {
            DelegateType = type;
        }
    }
}
#endif
