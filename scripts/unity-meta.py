#!/usr/bin/env python3
"""Writes the Unity `.meta` files of engines/unity/ that are missing, or with --check lists them and fails.

A package installed from git or a registry is immutable: Unity ignores any file or folder without a `.meta`, so every
one is committed. GUIDs are derived from the path (stable, unique within the package). Folders ending in `~`
(Samples~, Tests~) are hidden from Unity and need none. The plugin `.meta` files (PluginImporter platform settings)
are written by hand and only checked for presence here.
"""
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "engines" / "unity"
TAIL = "  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
IMPORTERS = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n"
           "  executionOrder: 0\n  icon: {instanceID: 0}\n" + TAIL,
    ".asmdef": "AssemblyDefinitionImporter:\n  externalObjects: {}\n" + TAIL,
    ".json": "TextScriptImporter:\n  externalObjects: {}\n" + TAIL,
    ".md": "TextScriptImporter:\n  externalObjects: {}\n" + TAIL,
}
FOLDER = "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n" + TAIL
PLUGIN_SUFFIXES = (".so", ".dll", ".a", ".dylib")


def wanted():
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(part.endswith("~") or part.startswith(".") for part in rel.parts) or path.suffix == ".meta":
            continue
        if path.is_file() and path.suffix in PLUGIN_SUFFIXES:
            continue  # binaries: not committed; their .meta files are
        yield path, rel


def body(path, rel):
    guid = hashlib.md5(("cobra-unity:" + rel.as_posix()).encode()).hexdigest()
    importer = FOLDER if path.is_dir() else IMPORTERS.get(path.suffix)
    if importer is None:
        raise SystemExit(f"unity-meta: no importer known for {rel}")
    return f"fileFormatVersion: 2\nguid: {guid}\n{importer}"


def main():
    check = "--check" in sys.argv[1:]
    missing = [(p, r) for p, r in wanted() if not Path(str(p) + ".meta").exists()]
    plugin_metas = [m for m in (ROOT / "Runtime" / "Plugins").rglob("*.meta")]
    if check:
        for _, rel in missing:
            print(f"unity-meta: missing {rel}.meta (run scripts/unity-meta.py)")
        guids = [line.split()[1] for m in ROOT.rglob("*.meta") for line in m.read_text().splitlines()
                 if line.startswith("guid:")]
        if len(guids) != len(set(guids)):
            print("unity-meta: duplicate GUIDs")
            return 1
        print(f"unity-meta: {len(guids)} .meta files ({len(plugin_metas)} under Runtime/Plugins), "
              f"{len(missing)} missing")
        return 1 if missing else 0
    for path, rel in missing:
        Path(str(path) + ".meta").write_text(body(path, rel))
        print(f"unity-meta: wrote {rel}.meta")
    return 0


if __name__ == "__main__":
    sys.exit(main())
