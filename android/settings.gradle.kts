// The cobra SDK as an Android library module (AAR). NOT BUILT ON THE PROJECT'S LINUX CI: there is no Android SDK or
// NDK there (see README.md in this directory). Open android/ in Android Studio, or `gradle :assembleRelease`.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "cobra-android"
