"""Copy the browser UIs runplane serves (GraphiQL, Swagger UI) from node_modules into runplane/static/vendor.

The versions are pinned exactly in package.json (and package-lock.json); `npm ci` fetches them, this script copies
the built files the pages load, and runplane/static/vendor/MANIFEST.json records each file's package, version and
SHA-256. The copies are committed, so the wheel carries them and the pages work with no internet.
tests/test_web_assets.py checks that the copies are those of the pinned packages.

    npm ci && python scripts/vendor_web_assets.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "runplane" / "static" / "vendor"
# package -> the files of it the pages load (paths inside the package)
FILES: dict[str, tuple[str, ...]] = {
    "react": ("umd/react.production.min.js",),
    "react-dom": ("umd/react-dom.production.min.js",),
    "graphiql": ("graphiql.min.js", "graphiql.min.css"),
    "@graphiql/plugin-explorer": ("dist/index.umd.js", "dist/style.css"),
    "swagger-ui-dist": ("swagger-ui-bundle.js", "swagger-ui.css"),
}


def package_version(package: str) -> str:
    version: str = json.loads((ROOT / "node_modules" / package / "package.json").read_text())["version"]
    return version


def vendored_name(package: str, path: str) -> str:
    """One flat folder per package: `@graphiql/plugin-explorer` -> `graphiql-plugin-explorer`."""
    return f"{package.lstrip('@').replace('/', '-')}/{Path(path).name}"


def main() -> None:
    shutil.rmtree(VENDOR, ignore_errors=True)
    manifest: dict[str, dict[str, str]] = {}
    for package, paths in FILES.items():
        for path in paths:
            source = ROOT / "node_modules" / package / path
            target = VENDOR / vendored_name(package, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            manifest[vendored_name(package, path)] = {
                "package": package,
                "version": package_version(package),
                "path": path,
                "sha256": digest,
            }
    (VENDOR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"{len(manifest)} files in {VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
