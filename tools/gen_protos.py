"""Generate the ``tritone_protos`` package (protobuf and gRPC modules) from protos/ at build time.

``tritone_protos`` is the wire API that the SDK and the gateway both import, a package of its
own so that neither reaches into the other. protoc names generated imports after the proto
package (``tritone.v1``); the modules live in ``tritone_protos``, so the one import line in
the gRPC module is rewritten.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "protos" / "tritone_protos"


def generate(out: Path = OUT) -> list[Path]:
    from grpc_tools import protoc  # build-time dependency only

    protos = sorted(PROTO_ROOT.glob("tritone/v1/*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *map(str, protos),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for src in sorted((Path(tmp) / "tritone" / "v1").iterdir()):
            text = src.read_text()
            text = text.replace("from tritone.v1 import", "from tritone_protos import")
            dest = out / src.name
            dest.write_text(text)
            written.append(dest)
    init = out / "__init__.py"
    init.write_text('"""Generated from protos/tritone/v1 by tools/gen_protos.py; do not edit."""\n')
    written.append(init)
    marker = out / "py.typed"  # the .pyi stubs are the package's types (PEP 561)
    marker.write_text("")
    written.append(marker)
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    if out.exists():
        shutil.rmtree(out)
    for path in generate(out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
