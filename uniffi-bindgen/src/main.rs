//! Generates the Kotlin, Swift and Python bindings from the built SDK library (`scripts/gen-bindings.sh`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
