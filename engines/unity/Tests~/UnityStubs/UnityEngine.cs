// Compile-only stand-ins for the few UnityEngine types the package and its sample use, so CI can type-check the
// Unity-only code paths (UNITY_5_3_OR_NEWER, the sample MonoBehaviour) with mcs where no Unity editor exists.
// Signatures follow UnityEngine's; nothing here runs.
using System;

namespace UnityEngine
{
    public class Object
    {
        public HideFlags hideFlags { get; set; }
        public static T FindObjectOfType<T>() where T : Object { return null; }
        public static void DontDestroyOnLoad(Object target) { }
    }

    [Flags]
    public enum HideFlags { None = 0, HideInHierarchy = 1 }

    public class Component : Object { }
    public class Behaviour : Component { }
    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        public GameObject(string name) { }
        public T AddComponent<T>() where T : Component { return null; }
    }

    public static class Debug
    {
        public static void LogException(Exception exception) { }
    }

    public static class Application
    {
        public static string persistentDataPath { get { return ""; } }
        public static string productName { get { return ""; } }
        public static string version { get { return ""; } }
    }

    public static class Time
    {
        public static float unscaledTime { get { return 0f; } }
        public static float unscaledDeltaTime { get { return 0f; } }
    }

    public static class Mathf
    {
        public static int RoundToInt(float f) { return (int)Math.Round(f); }
    }

    public enum OperatingSystemFamily { Other, MacOSX, Windows, Linux }

    public static class SystemInfo
    {
        public static OperatingSystemFamily operatingSystemFamily { get { return OperatingSystemFamily.Other; } }
    }

    public static class GUILayout
    {
        public static void Label(string text) { }
    }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class TooltipAttribute : Attribute
    {
        public TooltipAttribute(string tooltip) { }
    }
}

namespace AOT
{
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type type) { }
    }
}
