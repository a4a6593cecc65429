using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Cobra
{
    /// <summary>UTF-8 conversions for the C ABI, by hand because Marshal.PtrToStringUTF8 is missing from older
    /// Mono and Unity profiles.</summary>
    internal static class Utf8
    {
        /// <summary>NUL-terminated UTF-8 bytes of <paramref name="s"/>, or null (a C NULL) for null.</summary>
        internal static byte[] Encode(string s)
        {
            if (s == null)
            {
                return null;
            }
            byte[] bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        /// <summary>The string at a NUL-terminated UTF-8 pointer (null for NULL).</summary>
        internal static string Decode(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return null;
            }
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0)
            {
                len++;
            }
            return Decode(p, len);
        }

        /// <summary>The string of <paramref name="len"/> UTF-8 bytes at <paramref name="p"/>.</summary>
        internal static string Decode(IntPtr p, int len)
        {
            if (len == 0)
            {
                return string.Empty;
            }
            byte[] bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>An array of C strings in unmanaged memory; free it with <see cref="FreeArray"/>.</summary>
        internal static IntPtr[] AllocArray(string[] items)
        {
            IntPtr[] ptrs = new IntPtr[items.Length];
            try
            {
                for (int i = 0; i < items.Length; i++)
                {
                    if (items[i] == null)
                    {
                        throw new ArgumentNullException("items", "a null string in the array");
                    }
                    byte[] bytes = Encode(items[i]);
                    ptrs[i] = Marshal.AllocHGlobal(bytes.Length);
                    Marshal.Copy(bytes, 0, ptrs[i], bytes.Length);
                }
            }
            catch
            {
                FreeArray(ptrs);
                throw;
            }
            return ptrs;
        }

        internal static void FreeArray(IntPtr[] ptrs)
        {
            for (int i = 0; i < ptrs.Length; i++)
            {
                if (ptrs[i] != IntPtr.Zero)
                {
                    Marshal.FreeHGlobal(ptrs[i]);
                    ptrs[i] = IntPtr.Zero;
                }
            }
        }
    }
}
