// The cobra SDK for Android: the uniffi Kotlin bindings (bindings/kotlin, generated + helpers), the Android helpers
// in src/main/kotlin, and libcobra.so per ABI in src/main/jniLibs (built by android/build-rust.sh with an NDK).
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

android {
    namespace = "io.cobra.android"
    compileSdk = 35

    defaultConfig {
        // 24: ConnectivityManager.registerDefaultNetworkCallback (CobraConnectivity).
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    sourceSets {
        getByName("main") {
            // The generated bindings (uniffi/cobra/cobra.kt) and the hand-written helpers live in the repository's
            // bindings/kotlin, shared with the JVM tests; nothing is copied.
            kotlin.srcDirs("src/main/kotlin", "../bindings/kotlin")
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // uniffi's Kotlin calls into libcobra.so through JNA; on Android JNA ships as an AAR with its own native part.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    // ProcessLifecycleOwner (CobraLifecycle).
    implementation("androidx.lifecycle:lifecycle-process:2.8.7")
}
