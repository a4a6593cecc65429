/* A stand-in for Windows' bcryptprimitives.dll, for running cobra.dll under Wine 8 (Debian 12) ONLY.
 *
 * Rust's standard library (1.78+) draws its random numbers from ProcessPrng in bcryptprimitives.dll, which every
 * Windows 10+ ships but Wine only implements from 9.0 on: under Wine 8, cobra.dll fails to load
 * ("Library bcryptprimitives.dll ... not found"). scripts/test-engines.sh builds this file with mingw-w64 and
 * puts it next to the test executables; it is never shipped. ProcessPrng is implemented with BCryptGenRandom
 * (system-preferred RNG), which Wine 8 provides. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
            /* The real ProcessPrng never fails; it would terminate the process rather than return weak bytes. */
            RaiseFailFastException(NULL, NULL, 0);
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
